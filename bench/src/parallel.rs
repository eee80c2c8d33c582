//! Benchmark 2d: parallel dumps. The Coolify-shaped host of 2b with its
//! rows split over four tables, backed up by kastell with one dump job
//! (the single `pg_dump -Fc` stream) and with two and four (`pg_dump -Fd
//! -j N` into a temporary directory on the server, then one tar stream),
//! on loopback and behind the shaped 1 Gbit/s link of 2c, against the bare
//! `pg_dump -Fc -Z0` stream over OpenSSH in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kastell_core::wire::DumpJobs;
use kastell_core::{Error, Result};
use kastell_ssh::SshTransport;
use kastell_testkit::platform::PaasHost;

use crate::measure::{median, secs};
use crate::paas::{CASE, PG_DUMP, Rows, database_size, fill_table};
use crate::report::Section;
use crate::shaped::{OnHost, kastell_backup, on_host, reason};
use crate::throughput::openssh_at;

/// Tables the rows are split over.
const TABLES: u64 = 4;

/// The job counts measured, and what `auto` chooses.
const JOBS: [DumpJobs; 4] = [
    DumpJobs::ONE,
    DumpJobs::Exactly(2),
    DumpJobs::Exactly(4),
    DumpJobs::Auto,
];

/// The rows of one link, and each job count's ratio to the bare stream.
async fn measure(
    label: &str,
    host: &PaasHost,
    address: &str,
    platform: &OnHost,
    runs: usize,
    scratch: &Path,
) -> Result<(Vec<Vec<String>>, Vec<String>)> {
    let file = scratch.join("stream.dump");
    let mut bare = Vec::new();
    let mut ours: Vec<Vec<Duration>> = vec![Vec::new(); JOBS.len()];
    let mut sent = vec![0; JOBS.len()];
    let mut reasons = vec![String::new(); JOBS.len()];
    for _ in 0..runs {
        bare.push(openssh_at(
            &host.sshd.sshd,
            address,
            PG_DUMP,
            None,
            Some(&file),
        )?);
        for (i, jobs) in JOBS.into_iter().enumerate() {
            let store = tempfile::tempdir().map_err(|e| Error::io("creating a store", e))?;
            let backup = kastell_backup(platform, store.path(), jobs).await?;
            ours[i].push(backup.took);
            sent[i] = backup.sent;
            reasons[i] = reason(&backup);
        }
    }
    let base = median(&bare);
    let raw = std::fs::metadata(&file).map_or(0, |m| m.len());
    let mut rows = vec![vec![
        format!("{label}: ssh pg_dump -Fc -Z0 stream (baseline)"),
        secs(base),
        format!("{:.1} MB", raw as f64 / 1e6),
        "1.00".into(),
    ]];
    for (i, jobs) in JOBS.into_iter().enumerate() {
        let t = median(&ours[i]);
        rows.push(vec![
            format!("{label}: kastell backup create --jobs {jobs}"),
            secs(t),
            format!("{:.1} MB", sent[i] as f64 / 1e6),
            format!("{:.2}", t.as_secs_f64() / base.as_secs_f64().max(1e-9)),
        ]);
    }
    let why = JOBS
        .into_iter()
        .zip(reasons)
        .map(|(jobs, why)| format!("{label}, --jobs {jobs}: {why}"))
        .collect();
    Ok((rows, why))
}

/// Runs the benchmark on a database of about `db_mib` MiB.
pub(crate) async fn run(db_mib: u64, runs: usize, shape: Rows) -> Result<Section> {
    let host = tokio::task::spawn_blocking(|| PaasHost::start(&CASE))
        .await
        .map_err(|e| Error::unexpected(format!("starting the Coolify host: {e}")))?;
    let (host, size) = tokio::task::spawn_blocking(move || {
        let filled = (1..=TABLES)
            .try_for_each(|n| {
                fill_table(
                    &host.pg,
                    CASE.database,
                    &format!("bench_orders_{n}"),
                    db_mib / TABLES,
                    shape,
                )
            })
            .and_then(|()| database_size(&host.pg, CASE.database));
        (host, filled)
    })
    .await
    .map_err(|e| Error::unexpected(format!("filling the database: {e}")))?;
    let size = size?;
    let scratch = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;

    let (mut rows, mut why) = measure(
        "loopback",
        &host,
        "127.0.0.1",
        &on_host(&host),
        runs,
        scratch.path(),
    )
    .await?;
    let link = crate::netns::shaped(&host.sshd.sshd, 1000)?;
    let mut config = host.sshd.config();
    config.host = link.host();
    let shaped = crate::shaped::platform_over(&host, Arc::new(SshTransport::new(config)))?;
    let (fast, fast_why) = measure(
        "1 Gbit/s",
        &host,
        &link.host(),
        &shaped,
        runs,
        scratch.path(),
    )
    .await?;
    drop(link);
    rows.extend(fast);
    why.extend(fast_why);

    let mut section = Section::new(shape.title("2d. Parallel dumps"));
    section.para(format!(
        "The Coolify-shaped host of 2b with its {:.0} MB database split over {TABLES} tables of \
         the same rows, on loopback and behind the shaped 1 Gbit/s link of 2c. kastell runs \
         `backup create --compress auto --jobs N`: one job is the single `pg_dump -Fc -Z0` \
         stream; two and four run `pg_dump -Fd -j N -Z0` into a temporary directory inside the \
         database container, then stream it as one tar (compressed as auto decides), and remove \
         it. Baseline: the bare `pg_dump -Fc -Z0` stream over OpenSSH in the same run. Median of \
         {runs} run(s); \"sent\" is the bytes over SSH. Ratio = time / the bare stream's time on \
         the same link.",
        size as f64 / 1e6
    ));
    section.table(&["", "time", "sent", "ratio to bare stream"], rows);
    section.para(format!("What each backup said: {}.", why.join("; ")));
    Ok(section)
}
