//! What a backup's bytes did on the wire, as the backup result shows it:
//! which compression ran where, the bytes sent over SSH and the rate.

use kastell_core::types::Compression;
use kastell_core::wire::{WireCodec, WireTransfer};
use schemars::JsonSchema;
use serde::Serialize;

use super::progress::human_bytes;

/// The wire fields of a backup result (flattened into it).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WireSummary {
    /// What compressed the largest artifact, and where:
    /// `zstd on the server (stored as sent)`, `gzip on the server (zstd
    /// locally)`, `zstd locally`, or `none`.
    pub compression: String,
    /// Where compression ran for the largest artifact: `server`, `local`
    /// or `none`.
    pub compressed_on: String,
    /// The compressor that ran on the server (`zstd`, `pigz`, `gzip`), if
    /// one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_compressor: Option<String>,
    /// Why kastell chose it (the measured link, the host's tools, or the
    /// `--compress` option).
    pub compression_reason: String,
    /// Bytes received over SSH, every artifact.
    pub bytes_sent: u64,
    /// Bytes of the artifacts uncompressed.
    pub bytes_uncompressed: u64,
    /// Seconds the artifacts took to arrive, first byte to sealed.
    pub transfer_seconds: f64,
    /// Uncompressed MB (10^6 bytes) per second of transfer: how fast the
    /// data was backed up, whatever went over the wire.
    pub effective_mb_per_sec: f64,
    /// One line of the above, for people.
    pub transfer: String,
}

fn describe(t: &WireTransfer) -> String {
    match (t.codec, t.stored) {
        (WireCodec::Raw, Compression::None) => "none".to_owned(),
        (WireCodec::Raw, stored) => format!("{} locally", stored_name(stored)),
        (codec, stored) if codec.compression() == stored => {
            format!("{codec} on the server (stored as sent)")
        }
        (codec, Compression::None) => format!("{codec} on the server (stored uncompressed)"),
        (codec, stored) => format!("{codec} on the server ({} locally)", stored_name(stored)),
    }
}

fn stored_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

/// Sums `transfers` and describes the largest one's compression.
pub fn summarize(transfers: &[WireTransfer]) -> WireSummary {
    let largest = transfers.iter().max_by_key(|t| t.bytes_uncompressed);
    let sent: u64 = transfers.iter().map(|t| t.bytes_on_wire).sum();
    let raw: u64 = transfers.iter().map(|t| t.bytes_uncompressed).sum();
    let seconds = transfers.iter().map(|t| t.millis).sum::<u64>() as f64 / 1000.0;
    let rate = if seconds > 0.0 {
        raw as f64 / 1e6 / seconds
    } else {
        0.0
    };
    let rate = (rate * 10.0).round() / 10.0;
    let compression = largest.map_or_else(|| "none".to_owned(), describe);
    let transfer = format!(
        "{} sent over SSH for {} of data in {seconds:.1} s ({rate:.1} MB/s effective)",
        human_bytes(sent),
        human_bytes(raw),
    );
    WireSummary {
        compressed_on: largest.map_or("none", WireTransfer::ran_on).to_owned(),
        server_compressor: largest
            .filter(|t| t.codec != WireCodec::Raw)
            .map(|t| t.codec.as_str().to_owned()),
        compression_reason: largest.map(|t| t.reason.clone()).unwrap_or_default(),
        compression,
        bytes_sent: sent,
        bytes_uncompressed: raw,
        transfer_seconds: (seconds * 1000.0).round() / 1000.0,
        effective_mb_per_sec: rate,
        transfer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(codec: WireCodec, stored: Compression, wire: u64, raw: u64) -> WireTransfer {
        WireTransfer {
            artifact: "a".into(),
            codec,
            stored,
            bytes_on_wire: wire,
            bytes_uncompressed: raw,
            millis: 2000,
            reason: "because".into(),
        }
    }

    #[test]
    fn the_largest_artifact_names_the_compression_and_bytes_add_up() {
        let s = summarize(&[
            t(WireCodec::Zstd, Compression::Zstd, 150, 1_000_000),
            t(WireCodec::Zstd, Compression::Zstd, 50, 2_000),
        ]);
        assert_eq!(s.compression, "zstd on the server (stored as sent)");
        assert_eq!(s.compressed_on, "server");
        assert_eq!(s.server_compressor.as_deref(), Some("zstd"));
        assert_eq!(s.bytes_sent, 200);
        assert_eq!(s.bytes_uncompressed, 1_002_000);
        assert_eq!(s.transfer_seconds, 4.0);
        assert_eq!(s.effective_mb_per_sec, 0.3);
        assert_eq!(s.compression_reason, "because");

        let gzip = summarize(&[t(WireCodec::Gzip, Compression::Zstd, 10, 100)]);
        assert_eq!(gzip.compression, "gzip on the server (zstd locally)");
        let local = summarize(&[t(WireCodec::Raw, Compression::Zstd, 100, 100)]);
        assert_eq!(local.compression, "zstd locally");
        assert_eq!(local.compressed_on, "local");
        assert!(local.server_compressor.is_none());
        let none = summarize(&[t(WireCodec::Raw, Compression::None, 100, 100)]);
        assert_eq!(none.compressed_on, "none");
        assert_eq!(summarize(&[]).compression, "none");
    }
}
