//! Benchmark 2e: adaptive compression on the wire. One file of
//! application-like rows (and, beside it, random bytes: the worst case) on
//! the sandbox host, streamed as one backup artifact by kastell's engine
//! (`--compress auto`: probe, link measurement, plan, the stream into the
//! staging store with SHA-256, local compression and fsync) over a link
//! shaped to 100 Mbit/s (link-bound), and over 1 Gbit/s and loopback
//! (CPU-bound). Baselines in the same run, with the OpenSSH client: the
//! bare stream (`cat`), and the server-side `zstd -1` and `zstd -3`
//! streams; the floor of the link-bound case is computed from this
//! machine's zstd speed and size at each level and the link's raw rate.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell::engine::backup::Staging;
use kastell::engine::backup::wire;
use kastell_core::types::{ArtifactFormat, ArtifactSpec, BackupId, Compression};
use kastell_core::wire::{ArtifactSinkExt, CompressMode};
use kastell_core::{Error, RemoteCommand, Result};
use kastell_ssh::SshTransport;
use kastell_ssh::sandbox::LocalSshd;
use kastell_testkit::data::{app_rows, noise};

use crate::measure::{median, secs};
use crate::report::Section;
use crate::throughput::openssh_at;

/// One data set on the host.
struct Data {
    what: &'static str,
    /// Its path on the host (the sandbox user's home).
    path: String,
    size: u64,
    /// (level, bytes, seconds) of `zstd -L -T0` on this machine, 1..=9.
    levels: Vec<(u8, u64, f64)>,
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Times `sh -c script` here, its stdout counted; returns (bytes, seconds).
pub(crate) fn local(script: &str) -> Result<(u64, f64)> {
    let started = Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{script} | wc -c"))
        .output()
        .map_err(|e| Error::io(format!("running {script}"), e))?;
    let took = started.elapsed().as_secs_f64();
    let bytes = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| Error::unexpected(format!("{script} printed no size")))?;
    Ok((bytes, took))
}

impl Data {
    fn write(sshd: &LocalSshd, what: &'static str, name: &str, bytes: &[u8]) -> Result<Self> {
        let path = sshd.home().join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io("writing the data file", e))?;
        let path = path.to_string_lossy().into_owned();
        let mut levels = Vec::new();
        for level in 1..=9u8 {
            let (size, took) = local(&format!("zstd -{level} -T0 -q -c '{path}'"))?;
            levels.push((level, size, took));
        }
        Ok(Self {
            what,
            path,
            size: bytes.len() as u64,
            levels,
        })
    }

    fn ratio(&self, level: u8) -> f64 {
        self.levels
            .iter()
            .find(|l| l.0 == level)
            .map_or(1.0, |l| self.size as f64 / l.1.max(1) as f64)
    }

    /// The floor on a link of `rate` raw bytes per second: the level whose
    /// time, the longer of compressing on this machine's cores and sending
    /// its bytes, is least. Returns (level, seconds).
    fn floor(&self, rate: f64) -> (u8, f64) {
        self.levels
            .iter()
            .map(|&(level, bytes, took)| (level, (bytes as f64 / rate).max(took)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((1, self.size as f64 / rate))
    }
}

/// kastell's stream of `data` over `transport`: plan, then one artifact.
/// Returns the time, the bytes sent and the plan's reason.
async fn kastell(transport: &SshTransport, data: &Data) -> Result<(Duration, u64, String)> {
    let store = tempfile::tempdir().map_err(|e| Error::io("a store", e))?;
    let started = Instant::now();
    let plan = wire::plan(transport, CompressMode::Auto, None).await;
    let reason = plan.reason.clone();
    let mut staging = Staging::create(
        store.path(),
        &BackupId::new("bench-adapt")?,
        Compression::Zstd,
    )?
    .with_wire(plan);
    let spec = ArtifactSpec {
        name: "rows.tsv".into(),
        format: ArtifactFormat::Tar,
    };
    let cat = RemoteCommand::template("cat {}", &[data.path.as_str()])?;
    staging
        .stream(transport, &spec, &cat, None, Duration::from_secs(900))
        .await?;
    let took = started.elapsed();
    let sent = staging.transfers().last().map_or(0, |t| t.bytes_on_wire);
    Ok((took, sent, reason))
}

/// The median time of `runs` OpenSSH streams of `remote` into a file, and
/// the file's size.
fn openssh_stream(
    sshd: &LocalSshd,
    host: &str,
    remote: &str,
    runs: usize,
) -> Result<(Duration, u64)> {
    let out = tempfile::NamedTempFile::new().map_err(|e| Error::io("a temporary file", e))?;
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(openssh_at(sshd, host, remote, None, Some(out.path()))?);
    }
    Ok((median(&times), file_size(out.path())))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

/// One link: what it is called, whether it is the bottleneck, and how
/// both clients reach the sshd through it.
struct Link<'a> {
    label: &'static str,
    link_bound: bool,
    sshd: &'a LocalSshd,
    host: String,
    transport: Arc<SshTransport>,
}

/// One link's rows for one data set; its verdict goes to `verdicts`.
async fn on_link(
    link: &Link<'_>,
    data: &Data,
    runs: usize,
    verdicts: &mut Vec<String>,
) -> Result<Vec<Vec<String>>> {
    let Link {
        label,
        link_bound,
        sshd,
        ref host,
        ref transport,
    } = *link;
    let (bare, bare_size) = openssh_stream(sshd, host, &format!("cat '{}'", data.path), runs)?;
    let mut times = Vec::new();
    let mut last = (0, String::new());
    for _ in 0..runs {
        let (took, sent, reason) = kastell(transport, data).await?;
        times.push(took);
        last = (sent, reason);
    }
    let ours = median(&times);
    let mut rows = vec![vec![
        format!("{label}, {}: `cat` (bare stream)", data.what),
        secs(bare),
        mb(bare_size),
        "1.00".into(),
    ]];
    if link_bound {
        let (z1, z1_size) = openssh_stream(
            sshd,
            host,
            &format!("zstd -1 -T0 -q -c '{}'", data.path),
            runs,
        )?;
        let (z3, z3_size) = openssh_stream(
            sshd,
            host,
            &format!("zstd -3 -T0 -q -c '{}'", data.path),
            runs,
        )?;
        rows.push(vec![
            format!("{label}, {}: server `zstd -1 -T0`", data.what),
            secs(z1),
            mb(z1_size),
            ratio(z1, bare),
        ]);
        rows.push(vec![
            format!("{label}, {}: server `zstd -3 -T0`", data.what),
            secs(z3),
            mb(z3_size),
            ratio(z3, bare),
        ]);
        let rate = bare_size as f64 / bare.as_secs_f64().max(1e-9);
        let (level, floor) = data.floor(rate);
        let floor = Duration::from_secs_f64(floor);
        rows.push(vec![
            format!("{label}, {}: floor (level {level}: its bytes / the link's raw rate, or its compression time)", data.what),
            secs(floor),
            mb(data.levels[usize::from(level - 1)].1),
            ratio(floor, bare),
        ]);
        verdicts.push(format!(
            "{label}, {}: kastell {}× the floor (target ≤ 1.1×: {}), {}× the server zstd -3 stream (target ≤ 1: {})",
            data.what,
            ratio(ours, floor),
            verdict(ours.as_secs_f64() <= floor.as_secs_f64() * 1.1),
            ratio(ours, z3),
            verdict(ours <= z3),
        ));
    } else {
        verdicts.push(format!(
            "{label}, {}: kastell {}× the bare stream (target ≤ 1.15×: {})",
            data.what,
            ratio(ours, bare),
            verdict(ours.as_secs_f64() <= bare.as_secs_f64() * 1.15),
        ));
    }
    rows.push(vec![
        format!("{label}, {}: kastell auto ({})", data.what, last.1),
        secs(ours),
        mb(last.0),
        ratio(ours, bare),
    ]);
    Ok(rows)
}

/// Runs the benchmark on `mib` MiB of each data set, `runs` times each.
pub(crate) async fn run(mib: u64, runs: usize) -> Result<Section> {
    let mut section = Section::new("2e. Adaptive compression on the wire");
    let sshd = LocalSshd::start()?;
    let size =
        usize::try_from(mib << 20).map_err(|_| Error::invalid_input("--dump-mib too large"))?;
    let sets = [
        Data::write(
            &sshd,
            "app rows",
            "bench-adapt-rows.tsv",
            &app_rows(7, size),
        )?,
        Data::write(
            &sshd,
            "random bytes",
            "bench-adapt-noise.bin",
            &noise(7, size),
        )?,
    ];
    let (gzip_size, _) = local(&format!("gzip -6 -c '{}'", sets[0].path))?;
    let at = |label, link_bound, host: String| {
        let mut config = sshd.ssh_config();
        config.host = host.clone();
        Link {
            label,
            link_bound,
            sshd: &sshd,
            host,
            transport: Arc::new(SshTransport::new(
                config.with_pinned_host_key(sshd.host_key_fingerprint()),
            )),
        }
    };
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    let loopback = at("loopback", false, sshd.host().to_owned());
    for data in &sets {
        rows.extend(on_link(&loopback, data, runs, &mut verdicts).await?);
    }
    match crate::netns::shaped(&sshd, 100) {
        Ok(shaped) => {
            let slow = at("100 Mbit/s", true, shaped.host());
            for data in &sets {
                rows.extend(on_link(&slow, data, runs, &mut verdicts).await?);
            }
            shaped.set_rate(1000)?;
            let fast = at("1 Gbit/s", false, shaped.host());
            for data in &sets {
                rows.extend(on_link(&fast, data, runs, &mut verdicts).await?);
            }
        }
        Err(e) => section.para(format!(
            "The shaped links were skipped: {e} (they need root, iproute2 and tc)."
        )),
    }
    let app = &sets[0];
    section.para(format!(
        "{mib} MiB of application-like rows (testkit's `app_rows`: ids, e-mails, timestamps, \
         amounts, words and a JSON column; zstd -1 {:.2}×, zstd -3 {:.2}×, gzip -6 {:.2}× on this \
         machine) and, as the worst case, as many random bytes, in the sandbox user's home. \
         kastell: its engine's `--compress auto` (probe, link measurement, plan) and the stream \
         of the file as one artifact into the staging store (SHA-256, local zstd when planned, \
         fsync), timed from the probe to the sealed file. Baselines with the OpenSSH client into \
         a file: the bare stream and the server-side `zstd -1`/`-3 -T0` streams. The floor of a \
         link-bound run is, over levels 1-9, the least of max(the level's bytes / the bare \
         stream's rate, its `zstd -T0` time on this machine's cores). The host and kastell share \
         this machine's cores, so a CPU-bound run has both ends on the same two cores. Median of \
         {runs} run(s); ratio = time / the bare stream's on the same link.",
        app.ratio(1),
        app.ratio(3),
        app.size as f64 / gzip_size.max(1) as f64,
    ));
    section.table(&["run", "time", "sent", "ratio"], rows);
    section.para(format!("Targets: {}.", verdicts.join("; ")));
    for data in &sets {
        let _ = std::fs::remove_file(&data.path);
    }
    Ok(section)
}
