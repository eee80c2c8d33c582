//! Benchmark 2c: the Coolify-shaped host behind a shaped link (a network
//! namespace and a veth pair with `tc tbf` on both ends, made here; see
//! [`crate::netns`]) at 100 Mbit/s and 1 Gbit/s, and on loopback. Baselines
//! in the same run: the bare `pg_dump -Fc -Z0` stream and the server-side
//! gzip stream over the OpenSSH client, and for the restore an uncompressed
//! upload into the same `pg_restore`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell::ServerRecord;
use kastell::engine::backup::{
    BackupEngine, BackupRequest, CreatedBackup, RestoreRequest, TransferProgress,
};
use kastell_core::types::{PlatformRoot, Privilege};
use kastell_core::wire::DumpJobs;
use kastell_core::{Error, Platform, PlatformContext, PlatformTarget, Result, Transport};
use kastell_ssh::SshTransport;
use kastell_testkit::platform::{PaasHost, health_endpoint};

use crate::measure::{median, secs};
use crate::paas::{CASE, PG_DUMP, Rows, filled_host};
use crate::report::Section;
use crate::throughput::openssh_at;

/// The server-side gzip stream (the original tool compressed its dump with
/// gzip on the server).
const PG_DUMP_GZIP: &str = "docker exec coolify-db pg_dump -Fc -Z0 -U coolify -d coolify | gzip";

/// The restore baseline: the raw dump uploaded into the same `pg_restore`
/// kastell runs.
const PG_RESTORE: &str = "docker exec -i coolify-db pg_restore --clean --if-exists \
                          --single-transaction --exit-on-error --no-owner -U coolify -d coolify";

/// What one kastell backup did.
pub(crate) struct Backup {
    /// How long it took.
    pub(crate) took: Duration,
    /// What compressed the largest artifact, and where.
    pub(crate) compression: String,
    /// Bytes received over SSH.
    pub(crate) sent: u64,
    /// The backup.
    pub(crate) created: CreatedBackup,
}

/// A platform and the connection it uses (what a backup request carries).
pub(crate) type OnHost = (Arc<dyn Platform>, Arc<dyn Transport>);

/// The testkit host's platform and connection, as a backup request wants
/// them.
pub(crate) fn on_host(host: &PaasHost) -> OnHost {
    (host.platform.clone(), host.transport.clone())
}

/// The platform over `transport`, configured as the testkit host's.
pub(crate) fn platform_over(host: &PaasHost, transport: Arc<SshTransport>) -> Result<OnHost> {
    let transport: Arc<dyn Transport> = transport;
    let platform = (CASE.build)(PlatformContext {
        transport: transport.clone(),
        target: PlatformTarget {
            name: "bench-shaped".into(),
            ip: crate::netns::NS_ADDR.to_string(),
            domain: None,
            backup_paths: Vec::new(),
        },
        root: PlatformRoot::new(&host.shim.root().to_string_lossy())?,
        privilege: Privilege::default(),
        options: [("health_url".to_owned(), health_endpoint())]
            .into_iter()
            .collect(),
    })?;
    Ok((platform, transport))
}

/// A kastell backup through `platform` into `store`, with `jobs` dump jobs.
pub(crate) async fn kastell_backup(
    (platform, transport): &OnHost,
    store: &Path,
    jobs: DumpJobs,
) -> Result<Backup> {
    let started = Instant::now();
    let created = BackupEngine::new(store)
        .with_dump_jobs(jobs)
        .create(&BackupRequest {
            server: ServerRecord::new("bench-shaped", "bench-shaped", "10.213.77.2"),
            platform: platform.clone(),
            transport: transport.clone(),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await?;
    let took = started.elapsed();
    let summary = kastell::ops::summarize(&created.manifest.wire);
    Ok(Backup {
        took,
        compression: summary.compression,
        sent: summary.bytes_sent,
        created,
    })
}

async fn kastell_restore(
    (platform, transport): &OnHost,
    store: &Path,
    backup: &CreatedBackup,
) -> Result<(Duration, String)> {
    let started = Instant::now();
    let outcome = BackupEngine::new(store)
        .restore(RestoreRequest {
            server: ServerRecord::new("bench-shaped", "bench-shaped", "10.213.77.2"),
            platform: platform.clone(),
            transport: transport.clone(),
            backup_id: backup.id.clone(),
            safety_backup: false,
            host_key: None,
            health_deadline: Duration::from_secs(60),
            transfer: TransferProgress::none(),
        })
        .await;
    let took = started.elapsed();
    if let Some(e) = outcome.error {
        return Err(e);
    }
    let detail = outcome
        .steps
        .iter()
        .filter_map(|s| s.detail.clone())
        .find(|d| d.contains("pg_restore"))
        .unwrap_or_default();
    Ok((took, detail))
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// One link's rows: bare stream, gzip stream, kastell. Returns the rows,
/// the bare and gzip times, kastell's time and its last backup.
struct LinkRun {
    rows: Vec<Vec<String>>,
    bare: Duration,
    gzip: Option<Duration>,
    ours: Duration,
    last: Backup,
}

async fn measure_link(
    label: &str,
    host: &PaasHost,
    address: &str,
    platform: &OnHost,
    runs: usize,
    with_gzip: bool,
    scratch: &Path,
) -> Result<LinkRun> {
    let sshd = &host.sshd.sshd;
    let file = scratch.join("stream.dump");
    let gz = scratch.join("stream.dump.gz");
    let (mut bare, mut gzip, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..runs {
        bare.push(openssh_at(sshd, address, PG_DUMP, None, Some(&file))?);
        if with_gzip {
            gzip.push(openssh_at(sshd, address, PG_DUMP_GZIP, None, Some(&gz))?);
        }
        let store = tempfile::tempdir().map_err(|e| Error::io("creating a store", e))?;
        let backup = kastell_backup(platform, store.path(), DumpJobs::Auto).await?;
        ours.push(backup.took);
        // Keep the last store for the restore.
        let keep = scratch.join(store_dir(label));
        let _ = std::fs::remove_dir_all(&keep);
        copy_dir(store.path(), &keep)?;
        last = Some(backup);
    }
    let last = last.ok_or_else(|| Error::unexpected("no run"))?;
    let (bare_t, ours_t) = (median(&bare), median(&ours));
    let mut rows = vec![vec![
        format!("{label}: ssh pg_dump -Fc -Z0 stream (baseline)"),
        secs(bare_t),
        mb(size(&file)),
        "1.00".into(),
    ]];
    let gzip_t = (!gzip.is_empty()).then(|| median(&gzip));
    if let Some(g) = gzip_t {
        rows.push(vec![
            format!("{label}: ssh pg_dump | gzip on the server"),
            secs(g),
            mb(size(&gz)),
            format!("{:.2}", g.as_secs_f64() / bare_t.as_secs_f64()),
        ]);
    }
    rows.push(vec![
        format!(
            "{label}: kastell backup create (auto: {})",
            last.compression
        ),
        secs(ours_t),
        mb(last.sent),
        format!("{:.2}", ours_t.as_secs_f64() / bare_t.as_secs_f64()),
    ]);
    Ok(LinkRun {
        rows,
        bare: bare_t,
        gzip: gzip_t,
        ours: ours_t,
        last,
    })
}

/// Where the last store of the runs labelled `label` is kept.
fn store_dir(label: &str) -> String {
    format!("store-{}", label.replace(['/', ' '], "_"))
}

/// Copies a backup store (two levels of directories) so a restore can use
/// it after the run's temporary store is gone.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("copying a store", e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io("copying a store", e))? {
        let entry = entry.map_err(|e| Error::io("copying a store", e))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| Error::io("copying a store", e))?;
        }
    }
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Runs the benchmark on a database of about `db_mib` MiB.
pub(crate) async fn run(db_mib: u64, runs: usize, shape: Rows) -> Result<Section> {
    let (host, db_size, _) = filled_host(db_mib, shape).await?;
    let scratch = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;

    let loopback = measure_link(
        "loopback",
        &host,
        "127.0.0.1",
        &on_host(&host),
        runs,
        false,
        scratch.path(),
    )
    .await?;

    let link = crate::netns::shaped(&host.sshd.sshd, 100)?;
    let mut config = host.sshd.config();
    config.host = link.host();
    let shaped = platform_over(&host, Arc::new(SshTransport::new(config)))?;
    let slow = measure_link(
        "100 Mbit/s",
        &host,
        &link.host(),
        &shaped,
        runs,
        true,
        scratch.path(),
    )
    .await?;

    // Restore at 100 Mbit/s: the raw dump uploaded into pg_restore, against
    // kastell's restore of its backup (zstd sent, decompressed there).
    let raw = scratch.path().join("stream.dump");
    let upload = openssh_at(&host.sshd.sshd, &link.host(), PG_RESTORE, Some(&raw), None)?;
    let (restore, detail) = kastell_restore(
        &shaped,
        &scratch.path().join(store_dir("100 Mbit/s")),
        &slow.last.created,
    )
    .await?;

    link.set_rate(1000)?;
    let fast = measure_link(
        "1 Gbit/s",
        &host,
        &link.host(),
        &shaped,
        runs,
        true,
        scratch.path(),
    )
    .await?;
    drop(link);

    let mut section = Section::new(
        shape.title("2c. Backup and restore of a Coolify-shaped host behind a shaped link"),
    );
    section.para(format!(
        "The host of 2b ({:.0} MB database of {}) behind a link this benchmark makes: a network \
         namespace joined by a veth pair with `tc qdisc ... tbf` at the rate shown on both ends, a \
         second sshd (same keys and user) listening inside it on a private address of the pair; the \
         loopback rows use the ordinary sshd. Baselines with the OpenSSH client in the same run: the \
         bare `pg_dump -Fc -Z0` stream into a file and the same stream piped through `gzip` on the \
         server (the original tool's approach). kastell runs `backup create` with `--compress auto` \
         through its engine (probe of the host's compressors, a measurement of the link's steady rate, dump, \
         configuration archive, SHA-256, fsync, atomic publish). Median of {runs} run(s); \"sent\" \
         is the bytes over SSH (the file size for the baselines). Ratio = time / the bare stream's \
         time on the same link (lower is better).",
        db_size as f64 / 1e6,
        shape.describe()
    ));
    let mut rows = loopback.rows;
    rows.extend(slow.rows);
    rows.extend(fast.rows);
    section.table(&["", "time", "sent", "ratio to bare stream"], rows);
    let slow_bare = ratio(slow.ours, slow.bare);
    let slow_gzip = slow.gzip.map_or(f64::NAN, |g| ratio(slow.ours, g));
    let fast_bare = ratio(fast.ours, fast.bare);
    let loop_bare = ratio(loopback.ours, loopback.bare);
    let restore_ratio = ratio(restore, upload);
    section.table(
        &["target", "measured", "verdict"],
        vec![
            target("100 Mbit/s: ≤ 0.2× the bare stream".into(), slow_bare, 0.2),
            target("100 Mbit/s: ≤ 0.5× the gzip stream".into(), slow_gzip, 0.5),
            target("1 Gbit/s: ≤ 0.5× the bare stream".into(), fast_bare, 0.5),
            target("loopback: ≤ 1.3× the bare stream".into(), loop_bare, 1.3),
            target(
                format!(
                    "restore at 100 Mbit/s: ≤ 0.3× an uncompressed upload into pg_restore \
                     ({} against {})",
                    secs(restore),
                    secs(upload)
                ),
                restore_ratio,
                0.3,
            ),
        ],
    );
    section.para(format!(
        "The restore is kastell's engine without a safety backup (verify, stop, start the database, \
         `pg_restore`, configuration, start, health); its database step said: {detail}. Why auto \
         chose what it did, per link: loopback: {}; 100 Mbit/s: {}; 1 Gbit/s: {}.",
        reason(&loopback.last),
        reason(&slow.last),
        reason(&fast.last)
    ));
    Ok(section)
}

/// A row of the targets table: what, the measured ratio, met or missed.
fn target(what: String, measured: f64, limit: f64) -> Vec<String> {
    vec![
        what,
        format!("{measured:.2}×"),
        crate::mcp_start::verdict(measured <= limit).into(),
    ]
}

/// Why auto compressed `backup` as it did.
pub(crate) fn reason(backup: &Backup) -> String {
    kastell::ops::summarize(&backup.created.manifest.wire).compression_reason
}
