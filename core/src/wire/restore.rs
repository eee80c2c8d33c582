//! The restore direction: send a stored zstd artifact as it is and
//! decompress on the server when the host has zstd, else send it
//! decompressed.

use crate::error::Result;
use crate::shell::RemoteCommand;
use crate::transport::{BoxRead, Transport};
use crate::types::{ArtifactSource, Compression};

use super::probe::probe_tools;

/// Decompresses zstd from stdin to stdout on the server.
const UNZSTD: &str = "zstd -d -q -c";

/// What to run for one artifact of a restore, and what to feed it.
pub struct RestoreFeed {
    /// The command: the consumer, behind `zstd -d` when the bytes are sent
    /// compressed.
    pub command: RemoteCommand,
    /// Its stdin.
    pub stdin: BoxRead,
    /// Whether the bytes travel zstd-compressed (decompressed on the server).
    pub compressed: bool,
}

impl std::fmt::Debug for RestoreFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreFeed")
            .field("command", &self.command)
            .field("compressed", &self.compressed)
            .finish_non_exhaustive()
    }
}

/// Whether the host can decompress zstd (one probe command). A failed
/// probe counts as no: the restore then sends decompressed bytes.
pub async fn server_unzstd(transport: &dyn Transport) -> bool {
    probe_tools(transport).await.is_ok_and(|t| t.zstd)
}

/// The feed that restores artifact `name` of `source` through `consumer`:
/// the stored zstd bytes piped through `zstd -d` on the server when
/// `server_zstd`, else the decompressed bytes straight into `consumer`.
pub fn restore_feed(
    source: &dyn ArtifactSource,
    name: &str,
    consumer: &RemoteCommand,
    server_zstd: bool,
) -> Result<RestoreFeed> {
    if server_zstd {
        let (stored, compression) = source.open_stored(name)?;
        match compression {
            Compression::Zstd => {
                return Ok(RestoreFeed {
                    command: RemoteCommand::piped(&RemoteCommand::fixed(UNZSTD), consumer),
                    stdin: stored,
                    compressed: true,
                });
            }
            Compression::None => {
                return Ok(RestoreFeed {
                    command: consumer.clone(),
                    stdin: stored,
                    compressed: false,
                });
            }
            // A legacy gzip artifact: decompressed locally below.
            Compression::Gzip => drop(stored),
        }
    }
    Ok(RestoreFeed {
        command: consumer.clone(),
        stdin: source.open(name)?,
        compressed: false,
    })
}
