//! The plan of one backup: which codec runs on the server, at which level,
//! the level kastell compresses at locally, and why.
//!
//! The backup engine makes it (it probes the host and samples the link)
//! before it calls [`crate::Platform::backup`], and hands it over on the
//! sink ([`crate::types::ArtifactSink::wire`]); platforms only follow it,
//! through [`crate::ArtifactSinkExt::stream`].

use crate::shell::RemoteCommand;

use super::codec::WireCodec;
use super::level::WireLevel;

/// The codec to run on the server for a backup, its level, the level of
/// kastell's own compression, why, and a warning for the user when it is a
/// fallback from what was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePlan {
    /// The codec.
    pub codec: WireCodec,
    /// zstd's level on the server when [`codec`](Self::codec) is zstd
    /// (pigz and gzip always run at level 1): fixed, or adapted by zstd
    /// during the stream.
    pub level: WireLevel,
    /// The zstd level kastell stores with when it compresses locally (raw
    /// bytes on the wire, or gzip re-encoded), 1..=9.
    pub local_level: u8,
    /// Why, in a sentence the backup result shows.
    pub reason: String,
    /// Set when the host lacked what the mode prefers (no zstd), or could
    /// not be probed.
    pub warning: Option<String>,
    /// How fast the link carried a sample of random bytes from the host,
    /// in bytes per second, when one was taken (a platform may weigh a
    /// parallel database dump against it).
    pub link_bytes_per_sec: Option<f64>,
}

/// The plan of a sink that was given none: raw bytes, no reason.
static RAW: WirePlan = WirePlan {
    codec: WireCodec::Raw,
    level: WireLevel::FASTEST,
    local_level: 1,
    reason: String::new(),
    warning: None,
    link_bytes_per_sec: None,
};

impl WirePlan {
    /// Raw bytes on the wire, for `reason`.
    pub fn raw(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            ..RAW.clone()
        }
    }

    /// The plan of a sink that was given none: raw bytes on the wire, with
    /// an empty reason.
    pub fn unplanned() -> &'static WirePlan {
        &RAW
    }

    /// The server command that compresses stdin to stdout as planned
    /// (zstd at the plan's level, pigz or gzip at level 1), `None` for raw
    /// bytes.
    pub fn compress_command(&self) -> Option<RemoteCommand> {
        match self.codec {
            WireCodec::Zstd => Some(self.level.zstd_command()),
            codec => codec.compress_command(),
        }
    }

    /// `producer` with its stdout compressed on the server as planned
    /// (unchanged for raw bytes); fails when either side fails.
    pub fn compressing(&self, producer: &RemoteCommand) -> RemoteCommand {
        match self.compress_command() {
            Some(compressor) => RemoteCommand::piped(producer, &compressor),
            None => producer.clone(),
        }
    }

    /// What runs on the server, for people: `zstd --adapt=min=1,max=6`,
    /// `zstd -1`, `gzip -1`, or `nothing`.
    pub fn server_side(&self) -> String {
        match self.codec {
            WireCodec::Raw => "nothing".to_owned(),
            WireCodec::Zstd => format!("zstd {}", self.level),
            codec => format!("{codec} -1"),
        }
    }
}

impl Default for WirePlan {
    fn default() -> Self {
        RAW.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_runs_zstd_at_its_level_and_others_at_level_one() {
        let dump = RemoteCommand::fixed("pg_dump -Fc -Z0");
        let mut plan = WirePlan::default();
        assert_eq!(plan.compressing(&dump), dump);
        assert_eq!(plan.server_side(), "nothing");
        plan.codec = WireCodec::Zstd;
        assert!(
            plan.compressing(&dump)
                .as_str()
                .contains("'zstd -1 -T0 -q -c'")
        );
        plan.level = WireLevel::adapt(6);
        let piped = plan.compressing(&dump);
        assert!(piped.as_str().contains("--adapt=min=1,max=6"), "{piped}");
        assert!(piped.as_str().contains("'pg_dump -Fc -Z0'"), "{piped}");
        assert_eq!(plan.server_side(), "zstd --adapt=min=1,max=6");
        plan.codec = WireCodec::Gzip;
        assert!(plan.compressing(&dump).as_str().contains("'gzip -1 -c'"));
        assert_eq!(plan.server_side(), "gzip -1");
    }
}
