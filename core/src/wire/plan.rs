//! The plan of one backup: which codec runs on the server, and why.
//!
//! The backup engine makes it (it probes the host and samples the link)
//! before it calls [`crate::Platform::backup`], and hands it over on the
//! sink ([`crate::types::ArtifactSink::wire`]); platforms only follow it,
//! through [`crate::ArtifactSinkExt::stream`].

use super::codec::WireCodec;

/// The codec to run on the server for a backup, why, and a warning for the
/// user when it is a fallback from what was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePlan {
    /// The codec.
    pub codec: WireCodec,
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
}

impl Default for WirePlan {
    fn default() -> Self {
        RAW.clone()
    }
}
