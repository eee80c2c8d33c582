//! The engine's side of the wire: before a backup it probes the host's
//! compressors (one command) and measures the link's steady rate
//! ([`link`]), and decides where compression runs and at which level
//! ([`plan`]); before a restore it asks whether the host can decompress
//! zstd ([`server_unzstd`]). Platforms never do either: the sink and the
//! source carry the answers (`kastell_core::wire` has the words).

mod link;
mod plan;
mod probe;

pub use link::{LINK_SAMPLE_BYTES, LONG_SAMPLE_BYTES, LinkSample, measure_link};
pub use plan::{SMALL_BACKUP_BYTES, choose, local_cores, local_workers, plan};
pub use probe::{HostTools, probe_tools, probe_tools_measured};

use kastell_core::Transport;

/// Whether the host can decompress zstd (one probe command). A failed
/// probe counts as no: the restore then sends decompressed bytes.
pub async fn server_unzstd(transport: &dyn Transport) -> bool {
    probe_tools(transport).await.is_ok_and(|t| t.zstd)
}
