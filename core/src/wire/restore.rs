//! The restore direction: send a stored zstd artifact as it is and
//! decompress on the server when the host has zstd (the engine found out
//! and the source says so), else send it decompressed.

use crate::error::Result;
use crate::shell::RemoteCommand;
use crate::transport::BoxRead;
use crate::types::{ArtifactSource, Compression};

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

/// The feed that restores artifact `name` of `source` through `consumer`:
/// the stored zstd bytes piped through `zstd -d` on the server when the
/// source says the host has zstd ([`ArtifactSource::server_unzstd`]), else
/// the decompressed bytes straight into `consumer`. Refuses a name the
/// source does not hold, or whose checksum fails.
pub fn restore_feed(
    source: &dyn ArtifactSource,
    name: &str,
    consumer: &RemoteCommand,
) -> Result<RestoreFeed> {
    if source.server_unzstd() {
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
