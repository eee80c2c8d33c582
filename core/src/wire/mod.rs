//! Bytes on the wire: the words for where an artifact is compressed on its
//! way from the server (and decompressed on its way back), and the one
//! helper that streams an artifact.
//!
//! - [`CompressMode`] is what the user asked for (`auto`, `server`,
//!   `local`, `none`).
//! - [`WirePlan`] is the decision for one backup: which [`WireCodec`] runs
//!   on the server, at which [`WireLevel`] (fixed, or adapted by zstd
//!   during the stream), kastell's own level, and why. The backup engine makes it (probing the host,
//!   sampling the link) and a sink carries it
//!   ([`crate::types::ArtifactSink::wire`]).
//! - [`ArtifactSinkExt::stream`] runs one command and stores its output as
//!   an artifact, compressed on the server as the plan says: a platform
//!   calls it and never sees a codec.
//! - [`WireTransfer`] is what happened to one artifact: codec, bytes sent,
//!   bytes they stand for, time.
//! - [`DumpJobs`] is how many parallel jobs a database dump may use
//!   (`--jobs`); a backup sink carries it too.
//! - [`restore_feed`] is the way back: zstd bytes sent as stored and
//!   decompressed on the server when the source says the host has zstd
//!   ([`crate::types::ArtifactSource::server_unzstd`]).

mod codec;
mod jobs;
mod level;
mod plan;
mod restore;
mod stream;

pub use codec::{CompressMode, WireCodec, WireTransfer};
pub use jobs::{DumpJobs, MAX_DUMP_JOBS};
pub use level::{MAX_ZSTD_LEVEL, WireLevel};
pub use plan::WirePlan;
pub use restore::{RestoreFeed, restore_feed};
pub use stream::ArtifactSinkExt;
