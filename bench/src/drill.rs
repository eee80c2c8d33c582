//! Benchmark 8: the restore drill. A PostgreSQL database of about `db_mib`
//! MiB (the order rows of 2b) in a local kastell-pg cluster, dumped with
//! `pg_dump -Fc -Z0` into a file and staged as a kastell backup (zstd),
//! then drilled with [`kastell::engine::drill::drill`], against a plain
//! `pg_restore` of the same file into a fresh cluster in the same run. The
//! cluster's life cycle (start, `CREATE DATABASE`, teardown) and the
//! drill's extra work (checksums, decompression, the counting
//! `pg_restore --data-only`, `count(*)`) are also timed alone, to show
//! what the drill's time is made of.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kastell::engine::backup::StoredBackup;
use kastell_core::types::{ArtifactFormat, ArtifactSource};
use kastell_core::{Error, Result};

use crate::measure::{check, median, run_child, secs};
use crate::paas::{Cluster, Rows, fill};
use crate::report::Section;
use crate::repository::{stage, timed};

/// The database filled, dumped and restored.
const DB: &str = "bench";
/// The artifact's name, as kastell's Coolify platform names its dump.
const ARTIFACT: &str = "coolify-db.dump";
/// The target: a drill within this factor of a plain `pg_restore`.
const TARGET: f64 = 1.5;

/// The plain restore of `dump` into database [`DB`] of `cluster`, with
/// the options the drill gives its own `pg_restore`.
fn restore_command(cluster: &Cluster, dump: &Path) -> Command {
    let mut command = cluster.client("pg_restore");
    command
        .args(["--no-owner", "--no-privileges", "--exit-on-error", "-d", DB])
        .arg(dump);
    command
}

/// Times the counting side of the drill alone: `pg_restore --data-only
/// -f -` of `dump`, its SQL read and its lines counted here. Returns the
/// time and the bytes of SQL.
fn data_only(cluster: &Cluster, dump: &Path) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = cluster
        .client("pg_restore")
        .args(["--data-only", "-f", "-"])
        .arg(dump)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("starting pg_restore --data-only", e))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::unexpected("pg_restore has no stdout"))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = stdout
            .read(&mut buf)
            .map_err(|e| Error::io("reading pg_restore --data-only", e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for pg_restore --data-only", e))?;
    if !status.success() || lines == 0 {
        return Err(Error::unexpected(format!(
            "pg_restore --data-only failed ({status})"
        )));
    }
    Ok((started.elapsed(), bytes))
}

/// One run: the baseline's parts and the drill.
struct Run {
    start: Duration,
    create: Duration,
    restore: Duration,
    count: Duration,
    teardown: Duration,
    drill: Duration,
    /// The drill's own clock for its one artifact (the dump's version,
    /// cluster start, restore and checks; not the checksum pass or the
    /// teardown).
    drill_artifact: Duration,
}

fn one_run(dump: &Path, backup: &StoredBackup) -> Result<(Run, String)> {
    let (cluster, start) = timed(Cluster::start)?;
    let (_, create) = timed(|| cluster.execute("postgres", &format!("CREATE DATABASE {DB}")))?;
    let restored = run_child(restore_command(&cluster, dump))?;
    check(&restored, "pg_restore")?;
    let (rows, count) = timed(|| cluster.psql(DB, "SELECT count(*) FROM public.bench_orders"))?;
    let (_, teardown) = timed(|| {
        drop(cluster);
        Ok(())
    })?;

    let stored = StoredBackup::load(backup.id.clone(), backup.dir.clone());
    let (report, drill) = timed(|| kastell::engine::drill::drill(&stored))?;
    if !report.passed() {
        return Err(Error::unexpected(format!(
            "the drill failed: {}",
            report.failures().join("; ")
        )));
    }
    let artifact = report
        .artifacts
        .iter()
        .find(|a| a.artifact == ARTIFACT)
        .ok_or_else(|| Error::unexpected("the drill reported no dump"))?;
    let detail = artifact
        .checks
        .iter()
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((
        Run {
            start,
            create,
            restore: restored.wall,
            count,
            teardown,
            drill,
            drill_artifact: Duration::from_millis(artifact.duration_ms),
        },
        format!("{detail} (the baseline's count(*): {} rows)", rows.trim()),
    ))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Runs the benchmark `runs` times on a database of about `db_mib` MiB.
/// Blocking.
pub(crate) fn run(db_mib: u64, runs: usize, shape: Rows) -> Result<Section> {
    let scratch = tempfile::tempdir().map_err(|e| Error::io("a temporary directory", e))?;
    let dump = scratch.path().join("bench.dump");

    // The database, its dump, the backup, and the drill's extra work alone.
    let source = Cluster::start()?;
    source.execute("postgres", &format!("CREATE DATABASE {DB}"))?;
    let (db_size, fill_took) = timed(|| fill(&source, DB, db_mib, shape))?;
    let mut pg_dump = source.client("pg_dump");
    pg_dump.args(["-Fc", "-Z0", "-d", DB, "-f"]).arg(&dump);
    let dumped = run_child(pg_dump)?;
    check(&dumped, "pg_dump")?;
    let dump_size = std::fs::metadata(&dump).map_or(0, |m| m.len());
    let ((backup, stored_size), stage_took) = timed(|| {
        stage(
            &scratch.path().join("store").join("bench"),
            &dump,
            ARTIFACT,
            ArtifactFormat::PgCustom,
        )
    })?;
    let ((verified, _), verify_took) = timed(|| backup.source())?;
    let (_, decompress_took) = timed(|| {
        let mut reader = verified.open(ARTIFACT)?;
        std::io::copy(&mut reader, &mut std::io::sink())
            .map_err(|e| Error::io("decompressing the artifact", e))
    })?;
    let (data_only_took, sql_bytes) = data_only(&source, &dump)?;
    let major = source.major();
    drop(source);

    let mut all = Vec::new();
    let mut detail = String::new();
    for _ in 0..runs {
        let (run, said) = one_run(&dump, &backup)?;
        all.push(run);
        detail = said;
    }
    let pick = |f: fn(&Run) -> Duration| median(&all.iter().map(f).collect::<Vec<_>>());
    let restore = pick(|r| r.restore);
    let drill = pick(|r| r.drill);
    let (start, create, teardown) = (pick(|r| r.start), pick(|r| r.create), pick(|r| r.teardown));
    let count = pick(|r| r.count);
    let drill_artifact = pick(|r| r.drill_artifact);
    // Per run, the drill less the life cycle of a cluster like its own,
    // measured in the same run.
    let bare = median(
        &all.iter()
            .map(|r| r.drill.saturating_sub(r.start + r.create + r.teardown))
            .collect::<Vec<_>>(),
    );
    let whole = ratio(drill, restore);
    let without = ratio(bare, restore);

    let mut section = Section::new(shape.title("8. Restore drill"));
    section.para(format!(
        "A PostgreSQL database of {:.0} MB (the order rows of 2b, {} to generate) in a local \
         kastell-pg cluster (PostgreSQL {}; every cluster here runs with `fsync=off`, \
         `synchronous_commit=off`, `shared_buffers=16MB`), dumped with `pg_dump -Fc -Z0` into a \
         {} file in {}, then staged as a kastell backup (`{ARTIFACT}`, PgCustom, zstd: {} stored, \
         {}). Baseline: a fresh throwaway cluster and `CREATE DATABASE` (neither timed), then \
         `pg_restore --no-owner --no-privileges --exit-on-error -d {DB} FILE`, timed alone. \
         kastell: `kastell::engine::drill::drill` of the stored backup, timed whole: SHA-256 of the stored \
         file, `pg_restore -l` for the dump's version, a throwaway cluster started, `CREATE \
         DATABASE`, the zstd stream decompressed once and fed both to `pg_restore -d` (the same \
         options) and to a second `pg_restore --data-only -f -` whose COPY lines are counted, then \
         the tables listed and `count(*)` of each compared with the dump, and the cluster stopped \
         and removed. Median of {runs} run(s), baseline and drill alternating.",
        db_size as f64 / 1e6,
        secs(fill_took),
        major,
        mb(dump_size),
        secs(dumped.wall),
        mb(stored_size),
        secs(stage_took),
    ));
    let spread = |f: fn(&Run) -> Duration| {
        let (lo, hi) = all
            .iter()
            .map(f)
            .fold((Duration::MAX, Duration::ZERO), |(lo, hi), d| {
                (lo.min(d), hi.max(d))
            });
        format!("{}–{}", secs(lo), secs(hi))
    };
    section.table(
        &["", "time (median)", "min–max", "ratio to pg_restore"],
        vec![
            vec![
                "pg_restore of the dump file into a fresh cluster (baseline)".into(),
                secs(restore),
                spread(|r| r.restore),
                "1.00×".into(),
            ],
            vec![
                "kastell drill, whole".into(),
                secs(drill),
                spread(|r| r.drill),
                format!("{whole:.2}×"),
            ],
            vec![
                "kastell drill less a cluster's start, CREATE DATABASE and teardown \
                 (measured in the same run)"
                    .into(),
                secs(bare),
                spread(|r| r.drill.saturating_sub(r.start + r.create + r.teardown)),
                format!("{without:.2}×"),
            ],
        ],
    );
    section.para(
        "What the drill's time is made of, each part timed alone (the life cycle in every run, \
         the rest once, on the same files):",
    );
    section.table(
        &["part", "time", "in the drill"],
        vec![
            vec![
                "cluster start (initdb + server start, `Cluster::start`)".into(),
                secs(start),
                "sequential".into(),
            ],
            vec!["CREATE DATABASE".into(), secs(create), "sequential".into()],
            vec![
                "teardown of the restored cluster (stop, remove its directory)".into(),
                secs(teardown),
                "sequential".into(),
            ],
            vec![
                format!(
                    "checksum pass (SHA-256 of the {} stored file)",
                    mb(stored_size)
                ),
                secs(verify_took),
                "sequential, before the rest".into(),
            ],
            vec![
                "zstd decompression of the artifact, into nothing".into(),
                secs(decompress_took),
                "alongside the restore".into(),
            ],
            vec![
                format!(
                    "pg_restore --data-only -f - of the dump, its {} of SQL read and lines counted",
                    mb(sql_bytes)
                ),
                secs(data_only_took),
                "alongside the restore".into(),
            ],
            vec![
                "count(*) of the restored table".into(),
                secs(count),
                "sequential, after the restore".into(),
            ],
            vec![
                "the drill's own clock for the dump (version, start, restore, checks)".into(),
                secs(drill_artifact),
                "-".into(),
            ],
        ],
    );
    section.para(format!(
        "Target: a drill of the dump within {TARGET}× a plain `pg_restore` of it: {} ({whole:.2}× \
         whole; {without:.2}× without the cluster's life cycle, which the baseline does not \
         pay). The drill's checks said: {detail}.",
        crate::mcp_start::verdict(whole <= TARGET)
    ));
    Ok(section)
}
