//! Timing and memory measurement helpers: medians, child processes with
//! their peak resident memory, and throughput arithmetic.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kastell_core::{Error, Result};

/// The median of `samples` (the upper one for an even count); zero when
/// empty.
pub(crate) fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// The `q`-quantile (0..=1) of `samples`, nearest rank; zero when empty.
pub(crate) fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Megabytes (10^6 bytes) per second for `bytes` moved in `took`.
pub(crate) fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

/// Milliseconds of `d` with two decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Seconds of `d` with two decimals.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The peak resident set size of process `pid` so far (`VmHWM`), in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What process `pid` has read and written so far through system calls
/// (`rchar` + `wchar` of `/proc/PID/io`: sockets, pipes and files alike).
pub(crate) fn io_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(field("rchar:")? + field("wchar:")?)
}

/// How a child process ran.
#[derive(Debug)]
pub(crate) struct ChildRun {
    /// From spawn to exit.
    pub(crate) wall: Duration,
    /// The largest `VmHWM` seen while it ran, in KiB (sampled every few
    /// milliseconds, so growth in its last moments may be missed).
    pub(crate) peak_rss_kib: u64,
    /// The bytes it read and wrote ([`io_bytes`]), as last sampled (its
    /// last moments may be missed).
    pub(crate) io_bytes: u64,
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Everything it wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub(crate) stderr: Vec<u8>,
}

/// Runs `command` to completion, sampling its peak memory.
pub(crate) fn run_child(mut command: Command) -> Result<ChildRun> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| Error::io("starting a benchmark process", e))?;
    let pid = child.id();
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let mut peak = 0;
    let mut io = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(bytes) = io_bytes(pid) {
            io = io.max(bytes);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Error::io("waiting for a benchmark process", e)),
        }
    };
    let wall = started.elapsed();
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(ChildRun {
        wall,
        peak_rss_kib: peak,
        io_bytes: io,
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Fails with the child's stderr unless it exited 0.
pub(crate) fn check(run: &ChildRun, what: &str) -> Result<()> {
    if run.status.success() {
        Ok(())
    } else {
        let tail = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            let start = text.len().saturating_sub(2000);
            text.get(start..).unwrap_or_default().trim().to_owned()
        };
        Err(Error::unexpected(format!(
            "{what} failed ({}): {}\n{}",
            run.status,
            tail(&run.stderr),
            tail(&run.stdout)
        )))
    }
}
