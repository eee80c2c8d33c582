//! Bytes on the wire: where an artifact is compressed on its way from the
//! server (and decompressed on its way back), chosen per backup.
//!
//! - [`CompressMode`] is what the user asked for (`auto`, `server`,
//!   `local`, `none`); a backup sink carries it
//!   ([`crate::types::ArtifactSink::compress_mode`]).
//! - [`HostTools`] is what one cheap command found on the host (zstd,
//!   pigz, gzip, cores); [`LinkSample`] a short measurement of the link.
//! - [`WirePlan`] is the decision: which [`WireCodec`] runs on the server,
//!   and why, in words the backup result shows.
//! - [`WireTransfer`] is what happened to one artifact: codec, bytes sent,
//!   bytes they stand for, time.
//! - [`DumpJobs`] is how many parallel jobs a database dump may use
//!   (`--jobs`); a backup sink carries it too.
//! - [`restore_feed`] is the way back: zstd bytes sent as stored and
//!   decompressed on the server when it has zstd.

mod codec;
mod jobs;
mod plan;
mod probe;
mod restore;

pub use codec::{CompressMode, WireCodec, WireTransfer};
pub use jobs::{DumpJobs, MAX_DUMP_JOBS};
pub use plan::{WirePlan, backup_plan, choose};
pub use probe::{HostTools, LINK_SAMPLE_BYTES, LinkSample, measure_link, probe_tools};
pub use restore::{RestoreFeed, restore_feed, server_unzstd};
