//! Benchmark 2, end to end: `backup-create` on a Coolify-shaped host (the
//! `docker` shim over a real PostgreSQL holding about `db_mib` MiB) against
//! the bare `ssh host 'docker exec coolify-db pg_dump -Fc -Z0 ...' > file`
//! stream of the same database in the same run.

use std::time::{Duration, Instant};

use kastell::ServerRecord;
use kastell::backup::{BackupEngine, BackupRequest, TransferProgress};
use kastell_core::{Error, Result};
use kastell_testkit::platform::{PaasHost, PaasRoundTrip};
use kastell_testkit::shim::PaasFlavour;

use crate::measure::{mb_per_s, median, secs};
use crate::report::Section;
use crate::throughput::openssh;

pub(crate) const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_coolify::build,
    flavour: PaasFlavour::Coolify,
    database: "coolify",
    config_file: "data/coolify/source/.env",
};

/// The dump command kastell's Coolify platform runs (see kastell-paas).
pub(crate) const PG_DUMP: &str = "docker exec coolify-db pg_dump -Fc -Z0 -U coolify -d coolify";

/// The same dump compressed on the server with pg_dump's default zlib (what
/// kastell ran before, and closest to the original tool's remote gzip).
const PG_DUMP_ZLIB: &str = "docker exec coolify-db pg_dump -Fc -U coolify -d coolify";

/// Bytes a generated row takes in the table, roughly (for sizing).
const ROW_BYTES: u64 = 200;

/// kastell-pg's throwaway cluster, named through the testkit's wrapper
/// (its `Deref` target), so this crate needs no dependency of its own.
pub(crate) type Cluster = <kastell_testkit::pg::PgCluster as std::ops::Deref>::Target;

/// Fills database `db` of `pg` with about `mib` MiB of order rows; returns
/// its size in bytes as PostgreSQL reports it.
pub(crate) fn fill(pg: &Cluster, db: &str, mib: u64) -> Result<u64> {
    fill_table(pg, db, "bench_orders", mib)?;
    database_size(pg, db)
}

/// Fills the table `table` (created when missing) of database `db` with
/// about `mib` MiB of order rows, then vacuums and analyzes it.
pub(crate) fn fill_table(pg: &Cluster, db: &str, table: &str, mib: u64) -> Result<()> {
    let rows = (mib << 20) / ROW_BYTES;
    pg.execute(
        db,
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, customer text, \
             email text, amount numeric(12,2), created_at timestamptz, note text)"
        ),
    )?;
    let batch = 500_000;
    let mut from = 1;
    while from <= rows {
        let to = (from + batch - 1).min(rows);
        pg.execute(
            db,
            &format!(
                "INSERT INTO {table} SELECT g, 'customer ' || (g % 5000), \
                 md5(g::text) || '@example.com', (g % 1000000) / 100.0, \
                 timestamptz '2026-01-01' + g * interval '1 second', \
                 md5((g * 7)::text) || ' ' || md5((g * 13)::text) \
                 FROM generate_series({from}, {to}) g"
            ),
        )?;
        from = to + 1;
    }
    pg.execute(db, &format!("VACUUM ANALYZE {table}"))
}

/// `pg_database_size` of `db`.
pub(crate) fn database_size(pg: &Cluster, db: &str) -> Result<u64> {
    let size = pg.psql(db, &format!("SELECT pg_database_size('{db}')"))?;
    size.trim()
        .parse()
        .map_err(|_| Error::unexpected(format!("database size {size:?}")))
}

/// A Coolify-shaped host whose database holds about `db_mib` MiB: the
/// host, the database size in bytes and how long filling it took.
pub(crate) async fn filled_host(db_mib: u64) -> Result<(PaasHost, u64, Duration)> {
    let host = tokio::task::spawn_blocking(|| PaasHost::start(&CASE))
        .await
        .map_err(|e| Error::unexpected(format!("starting the Coolify host: {e}")))?;
    let started = Instant::now();
    let (host, db_size) = tokio::task::spawn_blocking(move || {
        let size = fill(&host.pg, CASE.database, db_mib);
        (host, size)
    })
    .await
    .map_err(|e| Error::unexpected(format!("filling the database: {e}")))?;
    Ok((host, db_size?, started.elapsed()))
}

/// Runs the benchmark `runs` times on a database of about `db_mib` MiB.
pub(crate) async fn run(db_mib: u64, runs: usize) -> Result<Section> {
    let (host, db_size, fill_time) = filled_host(db_mib).await?;
    let local = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;
    let stream_file = local.path().join("stream.dump");
    let record = ServerRecord::new("bench-coolify", "bench-coolify", "127.0.0.1");
    let mut stream_times = Vec::new();
    let mut zlib_times = Vec::new();
    let mut zlib_size = 0;
    let mut kastell_times = Vec::new();
    let mut stream_size = 0;
    let mut artifact_size = 0;
    for _ in 0..runs {
        zlib_times.push(openssh(
            &host.sshd.sshd,
            PG_DUMP_ZLIB,
            None,
            Some(&stream_file),
        )?);
        zlib_size = std::fs::metadata(&stream_file).map_or(0, |m| m.len());
        stream_times.push(openssh(&host.sshd.sshd, PG_DUMP, None, Some(&stream_file))?);
        stream_size = std::fs::metadata(&stream_file).map_or(0, |m| m.len());
        let store = tempfile::tempdir().map_err(|e| Error::io("creating a store", e))?;
        let engine = BackupEngine::new(store.path());
        let started = Instant::now();
        let created = engine
            .create(&BackupRequest {
                server: record.clone(),
                platform: host.platform.clone(),
                host_key: None,
                transfer: TransferProgress::none(),
            })
            .await?;
        kastell_times.push(started.elapsed());
        let db = created
            .manifest
            .artifacts
            .iter()
            .find(|a| a.name.contains("db"))
            .ok_or_else(|| Error::unexpected("no database artifact"))?;
        artifact_size = db.size;
    }
    let base = median(&stream_times);
    let ours = median(&kastell_times);
    let factor = ours.as_secs_f64() / base.as_secs_f64().max(1e-9);
    let mut section = Section::new("2b. Backup of a Coolify-shaped host");
    section.para(format!(
        "A Coolify host as kastell sees it: the `docker` shim over a real PostgreSQL 15 whose \
         database holds {:.0} MB ({} to generate), behind the sandbox sshd. The baseline is the bare \
         stream `ssh host '{PG_DUMP}' > file` with the OpenSSH client; kastell runs `backup-create` \
         through its engine (version check, container lookup, the same `pg_dump` streamed, the \
         configuration archive, zstd, SHA-256, fsync, atomic publish). Median of {runs} runs.",
        db_size as f64 / 1e6,
        secs(fill_time),
    ));
    section.table(
        &["", "time", "MB/s of dump", "stored size"],
        vec![
            vec![
                "ssh pg_dump stream (baseline)".into(),
                secs(base),
                format!("{:.0}", mb_per_s(stream_size, base)),
                format!("{:.1} MB", stream_size as f64 / 1e6),
            ],
            vec![
                "ssh pg_dump stream, zlib on the server (for scale)".into(),
                secs(median(&zlib_times)),
                format!("{:.0}", mb_per_s(stream_size, median(&zlib_times))),
                format!("{:.1} MB", zlib_size as f64 / 1e6),
            ],
            vec![
                "kastell backup-create".into(),
                secs(ours),
                format!("{:.0}", mb_per_s(stream_size, ours)),
                format!("{:.1} MB (zstd)", artifact_size as f64 / 1e6),
            ],
        ],
    );
    section.para(format!(
        "kastell takes {factor:.2}× the bare stream: target 1.1× or less {}. For scale, the issue \
         reports the original tool at 25–28 s for a 1.05 GB dump on this machine (remote gzip, temp \
         file, then scp).",
        crate::mcp_start::verdict(factor <= 1.1)
    ));
    Ok(section)
}
