//! The codecs an artifact can travel in, what the user can ask for, and the
//! record of one transfer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::shell::RemoteCommand;
use crate::types::Compression;

/// Where compression runs, as the user asks (`--compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressMode {
    /// kastell decides per backup from the host's cores, its own and the
    /// measured link: on the server when the link is the bottleneck (zstd
    /// adapting its level to the link where it can), else locally at the
    /// level kastell's cores keep up with.
    #[default]
    Auto,
    /// On the server whenever the host has zstd, pigz or gzip.
    Server,
    /// Uncompressed over the wire, zstd locally (kastell before 0.2).
    Local,
    /// Uncompressed over the wire and on disk.
    None,
}

impl CompressMode {
    /// Every mode, in the order the CLI lists them.
    pub const ALL: [CompressMode; 4] = [Self::Auto, Self::Server, Self::Local, Self::None];

    /// The mode's name (`auto`, `server`, `local`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Server => "server",
            Self::Local => "local",
            Self::None => "none",
        }
    }
}

impl fmt::Display for CompressMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompressMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim())
            .ok_or_else(|| {
                Error::invalid_input(format!("unknown compression mode {s:?}"))
                    .with_hint("Use auto, server, local or none")
            })
    }
}

/// How an artifact's bytes travel between the server and kastell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireCodec {
    /// As the server's command produced them.
    #[default]
    Raw,
    /// `zstd -T0` on the server (stored as sent).
    Zstd,
    /// `pigz` on the server (decompressed and re-encoded with zstd locally).
    Pigz,
    /// `gzip` on the server (decompressed and re-encoded with zstd locally).
    Gzip,
}

impl WireCodec {
    /// The codec's name (`raw`, `zstd`, `pigz`, `gzip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Zstd => "zstd",
            Self::Pigz => "pigz",
            Self::Gzip => "gzip",
        }
    }

    /// The format of the bytes on the wire.
    pub fn compression(self) -> Compression {
        match self {
            Self::Raw => Compression::None,
            Self::Zstd => Compression::Zstd,
            Self::Pigz | Self::Gzip => Compression::Gzip,
        }
    }

    /// The server command that compresses stdin to stdout at level 1 (the
    /// fastest; zstd on every core), `None` for [`WireCodec::Raw`]. A
    /// backup runs [`crate::wire::WirePlan::compress_command`], which
    /// carries zstd's planned level.
    pub fn compress_command(self) -> Option<RemoteCommand> {
        match self {
            Self::Raw => None,
            Self::Zstd => Some(RemoteCommand::fixed("zstd -1 -T0 -q -c")),
            Self::Pigz => Some(RemoteCommand::fixed("pigz -1 -c")),
            Self::Gzip => Some(RemoteCommand::fixed("gzip -1 -c")),
        }
    }

    /// `producer` with its stdout compressed on the server (unchanged for
    /// [`WireCodec::Raw`]); fails when either side fails.
    pub fn compressing(self, producer: &RemoteCommand) -> RemoteCommand {
        match self.compress_command() {
            Some(compressor) => RemoteCommand::piped(producer, &compressor),
            None => producer.clone(),
        }
    }
}

impl fmt::Display for WireCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one artifact on its way in: the codec on the wire, the
/// compression it was stored with, the bytes sent over SSH, the bytes they
/// stand for, and how long it took from first to last byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireTransfer {
    /// The artifact.
    pub artifact: String,
    /// The codec that ran on the server (`raw`: none).
    pub codec: WireCodec,
    /// Compression of the stored file.
    pub stored: Compression,
    /// Bytes received over SSH.
    pub bytes_on_wire: u64,
    /// Bytes of the uncompressed artifact.
    pub bytes_uncompressed: u64,
    /// Milliseconds from opening the artifact to sealing it.
    pub millis: u64,
    /// Why this codec was chosen.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl WireTransfer {
    /// Where compression ran: `server`, `local` or `none`.
    pub fn ran_on(&self) -> &'static str {
        match (self.codec, self.stored) {
            (WireCodec::Raw, Compression::None) => "none",
            (WireCodec::Raw, _) => "local",
            _ => "server",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_their_names() {
        for mode in CompressMode::ALL {
            assert_eq!(mode.as_str().parse::<CompressMode>().unwrap(), mode);
        }
        let err = "fast".parse::<CompressMode>().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.hint().unwrap().contains("server"));
    }

    #[test]
    fn raw_leaves_the_command_alone_and_others_pipe_it() {
        let dump = RemoteCommand::fixed("pg_dump -Fc -Z0");
        assert_eq!(WireCodec::Raw.compressing(&dump), dump);
        let zstd = WireCodec::Zstd.compressing(&dump);
        assert!(zstd.as_str().contains("'pg_dump -Fc -Z0'"), "{zstd}");
        assert!(zstd.as_str().contains("'zstd -1 -T0 -q -c'"), "{zstd}");
        assert_eq!(WireCodec::Pigz.compression(), Compression::Gzip);
    }
}
