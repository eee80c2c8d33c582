//! A backup whose SSH connection dies half-way (raw, or zstd-compressed on
//! the server) leaves no listed backup, no
//! staging directory and no file on the server. In its own test binary so
//! nothing else writes as the sandbox user meanwhile.

#![cfg(feature = "coolify")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::paas_host;

use std::path::Path;
use std::time::{Duration, Instant};

use kastell::engine::backup::{BackupRequest, STAGING_PREFIX, TransferProgress};
use kastell_core::wire::{CompressMode, DumpJobs};
use paas_host::{Kind, engine, record, start};

/// Files in /tmp owned by the sandbox user and newer than `marker`,
/// outside the harness's own directories.
fn new_sandbox_files(marker: &Path, harness: &[std::path::PathBuf]) -> Vec<String> {
    let out = std::process::Command::new("find")
        .args(["/tmp", "/var/tmp", "-user", "kastell-sandbox", "-newer"])
        .arg(marker)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !harness.iter().any(|h| Path::new(line).starts_with(h)))
        .filter(|line| !in_test_harness(line))
        .map(str::to_owned)
        .collect()
}

/// Whether `path` is inside a test harness directory (a PaaS shim, a
/// PostgreSQL cluster, or the fake hosts of a sandbox): other tests of this
/// binary run beside this one and their harnesses write there as the
/// sandbox user too. This test's own host is a PaaS shim, never a sandbox.
fn in_test_harness(path: &str) -> bool {
    Path::new(path).components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name.starts_with("kastell-shim-")
            || name.starts_with("kastell-pg-")
            || name.starts_with("kastell-hosts-")
    })
}

fn staging_bytes(server_dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(server_dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Processes of the sandbox user named `name` (pg_dump, zstd).
fn sandbox_processes(name: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-u", "kastell-sandbox", "-x", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Starts a backup of `host` into `dir` in the background.
fn spawn_backup(
    host: &paas_host::Host,
    kind: Kind,
    dir: &Path,
    mode: CompressMode,
    jobs: DumpJobs,
) -> tokio::task::JoinHandle<kastell_core::Result<kastell::engine::backup::CreatedBackup>> {
    let dir = dir.to_owned();
    let platform = host.platform.clone();
    let transport = host.transport.clone();
    tokio::spawn(async move {
        engine(&dir)
            .with_compress_mode(mode)
            .with_dump_jobs(jobs)
            .create(&BackupRequest {
                server: record(kind),
                platform,
                transport,
                host_key: None,
                transfer: TransferProgress::none(),
            })
            .await
    })
}

/// The backup failed as a lost connection does, and `store` lists nothing
/// and keeps no staged bytes.
fn assert_failed_and_nothing_listed(
    result: kastell_core::Result<kastell::engine::backup::CreatedBackup>,
    store: &Path,
) {
    let err = result.expect_err("a killed connection fails the backup");
    assert!(
        matches!(
            err.kind(),
            kastell_core::ErrorKind::Unavailable
                | kastell_core::ErrorKind::CommandFailed
                | kastell_core::ErrorKind::Timeout
        ),
        "{err}"
    );
    assert!(
        engine(store).list("paas-1").unwrap().is_empty(),
        "nothing listed"
    );
    assert_eq!(staging_bytes(&store.join("backups/paas-1")), 0);
}

/// Raw over the wire, then zstd on the server: one after the other, so
/// neither sees the other's files or processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_backup_leaves_nothing_behind() {
    killed_mid_backup(CompressMode::Local).await;
    let running = killed_mid_backup(CompressMode::Server).await;
    // The server's compressor and dump went with the connection. Only the
    // processes seen while this dump streamed count: other tests of this
    // binary run dumps of their own as the same user.
    let started = Instant::now();
    while running.iter().any(|pid| alive(pid)) {
        let left: Vec<_> = running.iter().filter(|pid| alive(pid)).collect();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running on the server: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether process `pid` still exists.
fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// Runs a backup in `mode`, kills the sshd while the dump streams, checks
/// that nothing is listed or left behind, and returns the pids of the
/// sandbox user's `pg_dump` and `zstd` seen just before the kill.
async fn killed_mid_backup(mode: CompressMode) -> Vec<String> {
    let kind = Kind::Coolify;
    let mut host = start(kind);
    // Enough data that the dump is still streaming when the connection dies.
    host.pg
        .execute(
            kind.database(),
            "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 40) AS blob FROM generate_series(1, 300000) g;",
        )
        .unwrap();
    let harness = vec![host.shim.dir(), host.shim.state_dir(), host.shim.root()];
    let marker = tempfile::NamedTempFile::new().unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    let tmp = tempfile::tempdir().unwrap();
    let task = spawn_backup(&host, kind, tmp.path(), mode, DumpJobs::ONE);
    let server_dir = tmp.path().join("backups/paas-1");
    let started = Instant::now();
    while staging_bytes(&server_dir) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the dump never started"
        );
        assert!(
            !task.is_finished(),
            "the backup finished before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut running = sandbox_processes("pg_dump");
    assert!(!running.is_empty(), "no pg_dump while the dump streams");
    running.extend(sandbox_processes("zstd"));
    host.sshd.sshd.stop();
    assert_failed_and_nothing_listed(task.await.unwrap(), tmp.path());
    let leftovers: Vec<_> = std::fs::read_dir(&server_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != kastell::engine::backup::LOCK_FILE)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let remote = new_sandbox_files(marker.path(), &harness);
    assert!(remote.is_empty(), "files left on the server: {remote:?}");
    running
}

/// The parallel dump's temporary directories in the container's `/tmp`.
fn parallel_dump_dirs(container_tmp: &Path) -> usize {
    std::fs::read_dir(container_tmp)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("kastell-dump."))
        .count()
}

/// The connection dies while `pg_dump -Fd -j 2` runs on the server,
/// before any byte was sent: held up by another session's lock on a
/// table, it would wait for as long as that lock is held. The watchdog on
/// the command's stdin stops it at once: the dump ends, its temporary
/// directory goes, and nothing is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_during_a_parallel_dump_leaves_nothing_behind() {
    let kind = Kind::Coolify;
    let mut host = start(kind);
    host.pg
        .execute(
            kind.database(),
            "CREATE TABLE big_a AS SELECT g AS id, md5(g::text) AS blob FROM generate_series(1, 20000) g; \
             CREATE TABLE big_b AS SELECT g AS id, md5((g * 3)::text) AS blob FROM generate_series(1, 20000) g;",
        )
        .unwrap();
    // Another session holds big_b for two minutes: the dump blocks on it.
    let mut locker = host
        .pg
        .client("psql")
        .args([
            "-X",
            "-q",
            "-d",
            kind.database(),
            "-c",
            "BEGIN; LOCK TABLE big_b IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock_held = Instant::now();
    while host
        .pg
        .psql(
            kind.database(),
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'big_b' AND l.mode = 'AccessExclusiveLock' AND l.granted",
        )
        .unwrap()
        .trim()
        != "1"
    {
        assert!(
            lock_held.elapsed() < Duration::from_secs(20),
            "the lock was never taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let tmp = tempfile::tempdir().unwrap();
    let task = spawn_backup(
        &host,
        kind,
        tmp.path(),
        CompressMode::Server,
        DumpJobs::Exactly(2),
    );
    let container_tmp = host.shim.container_tmp();
    let started = Instant::now();
    let mut running = Vec::new();
    while parallel_dump_dirs(&container_tmp) == 0 || running.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the parallel dump never started"
        );
        assert!(
            !task.is_finished(),
            "the backup finished before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        running = sandbox_processes("pg_dump");
    }
    host.sshd.sshd.stop();
    assert_failed_and_nothing_listed(task.await.unwrap(), tmp.path());
    // The server notices on its own, with the lock still held: its dump
    // stops and its directory goes.
    let started = Instant::now();
    loop {
        let left = host.shim.container_tmp_entries();
        let alive: Vec<_> = running.iter().filter(|pid| alive(pid)).collect();
        if left.is_empty() && alive.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "left on the server: {left:?}, still running: {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        locker.try_wait().unwrap().is_none(),
        "the lock was held throughout"
    );
    let _ = locker.kill();
    let _ = locker.wait();
}
