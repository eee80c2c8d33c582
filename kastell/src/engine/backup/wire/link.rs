//! How fast bytes come from the host: the steady rate of a sample of
//! random bytes, read from when each piece arrived.
//!
//! Timing a short sample from command to end reads a fast link several
//! times too slow: starting the command, TCP's and SSH's windows growing
//! and the first buffers filling all fall inside it. So every write of the
//! sample is timestamped as it arrives, the first quarter of the bytes is
//! left out, and the rate is what came after. A 2 MiB sample suffices
//! below a few hundred Mbit/s (at 100 Mbit/s its steady part lasts 0.13 s,
//! the whole as long as before); when that part passed too quickly to
//! judge, a longer one (32 MiB) is taken.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use kastell_core::transport::check_status;
use kastell_core::{Error, RemoteCommand, Result, Transport};

use super::probe::PROBE_TIMEOUT;

/// Bytes of the first link sample: 2 MiB, about 0.17 s at 100 Mbit/s.
/// Random, so no compression on the way can flatter it.
pub const LINK_SAMPLE_BYTES: u64 = 2 * 1024 * 1024;

/// Sends [`LINK_SAMPLE_BYTES`] random bytes to stdout.
const SAMPLE: &str = "head -c 2097152 /dev/urandom";

/// Bytes of the longer sample taken when the first was too quick to judge:
/// 32 MiB, about 0.3 s at 1 Gbit/s.
pub const LONG_SAMPLE_BYTES: u64 = 32 * 1024 * 1024;

/// Sends [`LONG_SAMPLE_BYTES`] random bytes to stdout.
const LONG_SAMPLE: &str = "head -c 33554432 /dev/urandom";

/// The share of a sample's bytes left out as ramp-up (a quarter).
const RAMP_UP_DIVISOR: u64 = 4;

/// The shortest steady part a rate is read from: shorter, the scheduler's
/// and the SSH buffers' jitter is a large part of it. The first sample's
/// lasts this long up to about 250 Mbit/s.
const MIN_STEADY: Duration = Duration::from_millis(50);

/// How fast the link carried random bytes from the host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkSample {
    /// Bytes the rate is read from (the sample less its ramp-up).
    pub bytes: u64,
    /// Seconds those bytes took to arrive.
    pub seconds: f64,
    /// Bytes received in all, ramp-up and every sample taken included.
    pub sampled: u64,
}

impl LinkSample {
    /// Bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-4)
    }
}

/// Each write's arrival: when, and the bytes received up to it.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(Instant, u64)>>>);

impl Write for Arrivals {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let now = Instant::now();
        let mut seen = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("the link sample's clock was poisoned"))?;
        let total = seen.last().map_or(0, |&(_, total)| total) + data.len() as u64;
        seen.push((now, total));
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The steady rate of one sample: the bytes after the first quarter and
/// the time they took, `None` when they took less than [`MIN_STEADY`] (or
/// arrived in one piece) and cannot be judged. `arrivals` are (seconds
/// since the command was sent, bytes received so far), in order.
fn steady(arrivals: &[(f64, u64)]) -> Option<(u64, f64)> {
    let &(last_at, total) = arrivals.last()?;
    let ramp = total / RAMP_UP_DIVISOR;
    let &(from_at, from) = arrivals.iter().find(|&&(_, bytes)| bytes >= ramp)?;
    let seconds = last_at - from_at;
    let bytes = total - from;
    (bytes > 0 && seconds >= MIN_STEADY.as_secs_f64()).then_some((bytes, seconds))
}

/// Runs one sample command and returns its arrivals (seconds since it was
/// sent, bytes so far) and how long it took in all.
async fn sample(
    transport: &dyn Transport,
    script: &'static str,
) -> Result<(Vec<(f64, u64)>, Duration)> {
    let command = RemoteCommand::fixed(script);
    let arrivals = Arrivals::default();
    let started = Instant::now();
    let out = transport
        .exec_streaming(&command, None, Box::new(arrivals.clone()), PROBE_TIMEOUT)
        .await?;
    let elapsed = started.elapsed();
    check_status(&command, out.status, &out.stderr)?;
    let seen = arrivals
        .0
        .lock()
        .map_err(|_| Error::unexpected("the link sample's clock was poisoned"))?;
    if seen.is_empty() {
        return Err(Error::unexpected(
            "the link sample (head -c /dev/urandom) produced no bytes",
        ));
    }
    let times = seen
        .iter()
        .map(|&(at, bytes)| (at.saturating_duration_since(started).as_secs_f64(), bytes))
        .collect();
    Ok((times, elapsed))
}

/// Measures the link's steady rate from the host: a 2 MiB sample, and a
/// 32 MiB one when the first passed too quickly to judge. When even that
/// one cannot be judged (a link faster than the host makes random bytes),
/// its bytes over its whole time less `round_trip` (one command's cost on
/// this connection), at least half of it, stand in.
///
/// Fails when a sample command fails or sends nothing.
pub async fn measure_link(transport: &dyn Transport, round_trip: Duration) -> Result<LinkSample> {
    let (first, _) = sample(transport, SAMPLE).await?;
    let first_bytes = first.last().map_or(0, |&(_, bytes)| bytes);
    if let Some((bytes, seconds)) = steady(&first) {
        return Ok(LinkSample {
            bytes,
            seconds,
            sampled: first_bytes,
        });
    }
    let (long, elapsed) = sample(transport, LONG_SAMPLE).await?;
    let long_bytes = long.last().map_or(0, |&(_, bytes)| bytes);
    let (bytes, seconds) =
        steady(&long).unwrap_or((long_bytes, whole_seconds(elapsed, round_trip)));
    Ok(LinkSample {
        bytes,
        seconds,
        sampled: first_bytes + long_bytes,
    })
}

/// `elapsed` less `round_trip`, at least half of `elapsed`: the estimate
/// is at most twice the plain bytes / elapsed.
fn whole_seconds(elapsed: Duration, round_trip: Duration) -> f64 {
    elapsed
        .saturating_sub(round_trip)
        .max(elapsed / 2)
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arrivals of `total` bytes in 64 KiB pieces: the first `slow` bytes
    /// at `ramp_rate`, the rest at `rate` (bytes per second), after
    /// `start` seconds.
    fn arrivals(start: f64, total: u64, slow: u64, ramp_rate: f64, rate: f64) -> Vec<(f64, u64)> {
        let mut at = start;
        let mut bytes = 0;
        let mut out = Vec::new();
        while bytes < total {
            let piece = (64 * 1024).min(total - bytes);
            at += piece as f64 / if bytes < slow { ramp_rate } else { rate };
            bytes += piece;
            out.push((at, bytes));
        }
        out
    }

    #[test]
    fn the_rate_leaves_out_the_start_and_the_ramp_up() {
        // 40 ms to start the command, the first 256 KiB at a tenth of
        // the rate, then 12.5 MB/s (100 Mbit/s): timed end to end this
        // reads 8.3 MB/s, the steady part reads the link.
        let seen = arrivals(0.040, LINK_SAMPLE_BYTES, 256 * 1024, 1.25e6, 12.5e6);
        let (bytes, seconds) = steady(&seen).unwrap();
        let rate = bytes as f64 / seconds;
        assert!((rate - 12.5e6).abs() / 12.5e6 < 0.05, "{rate}");
        let naive = LINK_SAMPLE_BYTES as f64 / seen.last().unwrap().0;
        assert!(naive < 9e6, "{naive}");
    }

    #[test]
    fn a_sample_that_passed_too_quickly_is_not_judged() {
        // 2 MiB at 1 GB/s: 1.5 ms of steady part; at 40 MB/s, 39 ms.
        assert_eq!(
            steady(&arrivals(0.01, LINK_SAMPLE_BYTES, 0, 40e6, 40e6)),
            None
        );
        assert_eq!(
            steady(&arrivals(0.01, LINK_SAMPLE_BYTES, 0, 1e9, 1e9)),
            None
        );
        // One piece: nothing to time.
        assert_eq!(steady(&[(0.2, LINK_SAMPLE_BYTES)]), None);
        assert_eq!(steady(&[]), None);
        // 32 MiB at 110 MB/s: 0.23 s of steady part.
        let (bytes, seconds) = steady(&arrivals(0.01, LONG_SAMPLE_BYTES, 0, 110e6, 110e6)).unwrap();
        assert!((bytes as f64 / seconds - 110e6).abs() < 1e6);
    }

    #[test]
    fn the_round_trip_never_takes_more_than_half_the_sample() {
        let ms = Duration::from_millis;
        assert!((whole_seconds(ms(200), ms(40)) - 0.160).abs() < 1e-9);
        assert!((whole_seconds(ms(6), ms(5)) - 0.003).abs() < 1e-9);
        assert!((whole_seconds(ms(4), ms(9)) - 0.002).abs() < 1e-9);
    }
}
