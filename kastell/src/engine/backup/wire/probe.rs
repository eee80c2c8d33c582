//! What a host can compress with (one cheap command), and how fast the link
//! to it is (a short sample of random bytes).

use std::time::{Duration, Instant};

use serde::Serialize;

use kastell_core::transport::check_status;
use kastell_core::{Error, RemoteCommand, Result, Transport, TransportExt};

/// Prints the name of each compressor that runs (`-V` exits 0), then, with
/// zstd, `zstd-speed <MB/s>` from zstd's own benchmark (level 1 on every
/// core, one pass over 10 MB of its synthetic data: about a tenth of a
/// second), then the number of cores. A compressor that is installed but
/// broken counts as missing.
const PROBE: &str = "for t in zstd pigz gzip; do \"$t\" -V >/dev/null 2>&1 && echo \"$t\"; done; \
                     if zstd -V >/dev/null 2>&1; then zstd -q -b1 -e1 -i0 -T0 2>&1 \
                     | sed -n 's/^-1 .*) *\\([0-9.]*\\) MB\\/s.*/zstd-speed \\1/p'; fi; \
                     nproc 2>/dev/null || echo 1";

/// How long the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of the link sample: 2 MiB, about 0.17 s at 100 Mbit/s and 17 ms
/// at 1 Gbit/s. Random, so no compression on the way can flatter it.
pub const LINK_SAMPLE_BYTES: u64 = 2 * 1024 * 1024;

/// Sends [`LINK_SAMPLE_BYTES`] random bytes to stdout.
const SAMPLE: &str = "head -c 2097152 /dev/urandom";

/// What one probe found on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostTools {
    /// `zstd` runs.
    pub zstd: bool,
    /// `pigz` runs.
    pub pigz: bool,
    /// `gzip` runs.
    pub gzip: bool,
    /// Cores (`nproc`), at least 1.
    pub cores: u32,
    /// What zstd's benchmark measured on the host at level 1 on every
    /// core, in bytes per second; `None` when it did not run or say.
    pub zstd_bytes_per_sec: Option<u64>,
    /// How long the probe's round trip took, in microseconds (the cost of
    /// one command on this connection, subtracted from the link sample).
    #[serde(skip)]
    pub round_trip_micros: u64,
}

impl HostTools {
    /// Parses the probe's output.
    pub fn parse(output: &str) -> Self {
        let lines: Vec<&str> = output.lines().map(str::trim).collect();
        Self {
            zstd: lines.contains(&"zstd"),
            pigz: lines.contains(&"pigz"),
            gzip: lines.contains(&"gzip"),
            cores: lines
                .iter()
                .rev()
                .find_map(|l| l.parse::<u32>().ok())
                .unwrap_or(1)
                .max(1),
            zstd_bytes_per_sec: lines
                .iter()
                .find_map(|l| l.strip_prefix("zstd-speed "))
                .and_then(|mb| mb.trim().parse::<f64>().ok())
                .filter(|mb| mb.is_finite() && *mb > 0.0)
                .map(|mb| (mb * 1e6) as u64),
            round_trip_micros: 0,
        }
    }

    /// The compressors found, by name (`zstd, gzip`), or `none`.
    pub fn summary(&self) -> String {
        let found: Vec<&str> = [
            (self.zstd, "zstd"),
            (self.pigz, "pigz"),
            (self.gzip, "gzip"),
        ]
        .into_iter()
        .filter_map(|(present, name)| present.then_some(name))
        .collect();
        if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        }
    }
}

/// Runs the probe: one command, a few milliseconds plus a round trip.
pub async fn probe_tools(transport: &dyn Transport) -> Result<HostTools> {
    let started = Instant::now();
    let out = transport
        .exec_checked(&RemoteCommand::fixed(PROBE), PROBE_TIMEOUT)
        .await
        .map_err(|e| e.or_hint("kastell could not check which compressors the host has"))?;
    let mut tools = HostTools::parse(&out.stdout_text());
    tools.round_trip_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(tools)
}

/// A short measurement of how fast bytes come from the host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkSample {
    /// Bytes received.
    pub bytes: u64,
    /// Seconds from sending the command to its end, less one command's
    /// round trip, but at least half of the whole (a fast link's sample
    /// lasts about as long as the round trip, which would otherwise leave
    /// nothing to divide by).
    pub seconds: f64,
}

impl LinkSample {
    /// Bytes per second. A short sample underestimates a fast link (TCP
    /// and the SSH window are still growing), which only ever makes
    /// compression on the server look more worthwhile than it is.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-4)
    }
}

/// Counts what it is given and drops it.
struct Counter;

impl std::io::Write for Counter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams [`LINK_SAMPLE_BYTES`] random bytes from the host and times them,
/// minus `round_trip` (one command's cost on this connection).
pub async fn measure_link(transport: &dyn Transport, round_trip: Duration) -> Result<LinkSample> {
    let command = RemoteCommand::fixed(SAMPLE);
    let started = Instant::now();
    let out = transport
        .exec_streaming(&command, None, Box::new(Counter), PROBE_TIMEOUT)
        .await?;
    let elapsed = started.elapsed();
    check_status(&command, out.status, &out.stderr)?;
    if out.bytes_received == 0 {
        return Err(Error::unexpected(
            "the link sample (head -c /dev/urandom) produced no bytes",
        ));
    }
    Ok(LinkSample {
        bytes: out.bytes_received,
        seconds: sample_seconds(elapsed, round_trip),
    })
}

/// `elapsed` less `round_trip`, at least half of `elapsed`: the estimate
/// is at most twice the plain bytes / elapsed.
fn sample_seconds(elapsed: Duration, round_trip: Duration) -> f64 {
    elapsed
        .saturating_sub(round_trip)
        .max(elapsed / 2)
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_probe_prints() {
        let all = HostTools::parse("zstd\npigz\ngzip\nzstd-speed 364.78\n8\n");
        assert!(all.zstd && all.pigz && all.gzip);
        assert_eq!(all.cores, 8);
        assert_eq!(all.zstd_bytes_per_sec, Some(364_780_000));
        assert_eq!(
            HostTools::parse("zstd\nzstd-speed nan\n2").zstd_bytes_per_sec,
            None
        );
        assert_eq!(HostTools::parse("zstd\n2").zstd_bytes_per_sec, None);
        assert_eq!(all.summary(), "zstd, pigz, gzip");
        let bare = HostTools::parse("gzip\n1");
        assert!(!bare.zstd && !bare.pigz && bare.gzip);
        assert_eq!(bare.summary(), "gzip");
        let nothing = HostTools::parse("");
        assert_eq!(nothing.cores, 1);
        assert_eq!(nothing.summary(), "none");
    }

    #[test]
    fn the_round_trip_never_takes_more_than_half_the_sample() {
        let ms = Duration::from_millis;
        assert!((sample_seconds(ms(200), ms(40)) - 0.160).abs() < 1e-9);
        assert!((sample_seconds(ms(6), ms(5)) - 0.003).abs() < 1e-9);
        assert!((sample_seconds(ms(4), ms(9)) - 0.002).abs() < 1e-9);
    }

    #[test]
    fn the_probe_runs_in_a_real_shell() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(PROBE)
            .output()
            .unwrap();
        assert!(out.status.success());
        let tools = HostTools::parse(&String::from_utf8_lossy(&out.stdout));
        let has = |name: &str| {
            std::process::Command::new(name)
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert_eq!(tools.zstd, has("zstd"));
        assert_eq!(tools.gzip, has("gzip"));
        // zstd's benchmark ran and said how fast it is here.
        assert_eq!(tools.zstd_bytes_per_sec.is_some(), tools.zstd, "{tools:?}");
        assert!(tools.cores >= 1);
    }
}
