//! Fault injection, local side: the disk fills up (or a file-size limit is
//! hit) in the middle of writing a backup, and a backup is damaged on disk.
//! The fleet store and its locks under faults are `store.rs`.
//!
//! The servers are the sandbox's fake hosts behind a real sshd; the disk
//! is a real one: as root, a 2 MiB tmpfs mounted as the kastell directory
//! (`ENOSPC`); as any user, the real `kastell` binary under `ulimit -f`
//! (`EFBIG`). After each fault: what the user sees, no complete-looking
//! partial backup, the staging directory swept, the store readable,
//! nothing left on the server, and nothing run on the server when it must
//! not be.
#![cfg(feature = "bare")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::faults::common as faults_common;
use kastell_testkit::tmpfs::Tmpfs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use faults_common::{
    RemoteTemp, SERIAL, Tally, Watched, assert_host_healthy, assert_no_partial_backup,
    assert_no_remote_temp, assert_store_readable, assert_user_sees, entries,
};
use kastell::engine::backup::{MANIFEST_FILE, STAGING_PREFIX};
use kastell::ops::{self, Context};
use kastell::surfaces::sandbox::{MANUAL_SERVER, Sandbox, SandboxPlan};
use kastell::{Env, Surface};
use kastell_core::Transport;

/// Bytes of incompressible data under a backed-up path: far more than the
/// room the disk faults leave.
const BLOB: u64 = 8 << 20;

/// A sandbox with only the manual server (no simulator needed).
pub(super) async fn fleet(dir: &Path) -> Sandbox {
    let plan = SandboxPlan {
        providers: Some(Vec::new()),
        servers_per_provider: 1,
        manual_server: true,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    Sandbox::start_with(dir, &plan).await.unwrap()
}

pub(super) fn ctx(sandbox: &Sandbox) -> Context {
    sandbox.context(&Env::from_pairs([("KASTELL_LOG", "warn")]), Surface::Cli)
}

fn root(sandbox: &Sandbox) -> PathBuf {
    let address = sandbox.server(MANUAL_SERVER).unwrap().address;
    sandbox.hosts().root(address).unwrap()
}

/// Puts `len` bytes of incompressible data under the manual server's
/// `/etc/nginx`, which the bare platform backs up.
fn add_blob(sandbox: &Sandbox, len: u64) -> PathBuf {
    let path = root(sandbox).join("etc/nginx/blob.bin");
    let (mut data, _) = kastell_testkit::data::RandomReader::new(7, len);
    let mut file = std::fs::File::create(&path).unwrap();
    std::io::copy(&mut data, &mut file).unwrap();
    file.flush().unwrap();
    sandbox.hosts().hand_over().unwrap();
    path
}

/// The local disk fills up while a backup streams in: the backup fails
/// with what to do, nothing is listed, the staging directory is gone, and
/// once there is room again the next backup works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_backup_keeps_nothing_and_says_so() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kastell");
    let Some(_disk) = Tmpfs::mount(&dir, "2m") else {
        // Not root (or no mount rights): the file-size limit test below
        // makes the same write fail for any user.
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let mut t = Tally::new("local-disk-full", &[]);
    let sandbox = fleet(&dir).await;
    let ctx = ctx(&sandbox);
    let blob = add_blob(&sandbox, BLOB);
    let remote = RemoteTemp::snapshot(sandbox.sshd().user());

    let err = ops::backup_create(&ctx, Some(MANUAL_SERVER))
        .await
        .unwrap_err();
    t.injected(1);
    assert_user_sees(&mut t, &err, &["unexpected"], &["No space left on device"]);
    t.check(
        err.hint.as_deref().unwrap_or("").contains("disk is full"),
        "the hint says the local disk is full",
    );
    let listed = assert_no_partial_backup(&mut t, &dir, MANUAL_SERVER);
    t.check(listed.is_empty(), "nothing is listed");
    let left = entries(&dir.join("backups").join(MANUAL_SERVER));
    t.check(
        left.iter().all(|n| !n.starts_with(STAGING_PREFIX)),
        format!("the staging directory was swept: {left:?}"),
    );
    assert_store_readable(&mut t, &dir);
    assert_no_remote_temp(&mut t, &remote);
    assert_host_healthy(&mut t, &ctx, MANUAL_SERVER).await;

    std::fs::remove_file(blob).unwrap();
    let again = ops::backup_create(&ctx, Some(MANUAL_SERVER)).await;
    t.check(
        again.is_ok(),
        format!("with room again, the backup works: {again:?}"),
    );
    let listed = assert_no_partial_backup(&mut t, &dir, MANUAL_SERVER);
    t.check(listed.len() == 1, "exactly the new backup is listed");
    t.finish();
    drop(sandbox);
}

/// The real `kastell` binary with `sandbox`'s environment and `args`,
/// under `ulimit -f <blocks>` with `SIGXFSZ` ignored, so a write past the
/// limit fails with `EFBIG` as it would on a full or limited disk.
pub(super) fn kastell_limited(
    sandbox: &Sandbox,
    dir: &Path,
    blocks: u32,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_kastell"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir)
        .envs(sandbox.env_overlay())
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

/// The same fault for any user, through the CLI: a file-size limit makes
/// the staging write fail with `EFBIG`; the user sees the error and the
/// hint, and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_mid_backup_fails_the_cli_cleanly() {
    let _serial = SERIAL.lock().await;
    let mut t = Tally::new("local-file-size-limit-cli", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kastell");
    let sandbox = fleet(&dir).await;
    let blob = add_blob(&sandbox, BLOB);
    let remote = RemoteTemp::snapshot(sandbox.sshd().user());

    let out = kastell_limited(
        &sandbox,
        &dir,
        2048,
        &["backup", "create", MANUAL_SERVER, "--force"],
    );
    t.injected(1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    t.check(!out.status.success(), format!("the CLI fails: {stderr}"));
    t.check(
        stderr.contains("File too large"),
        format!("it names the failure: {stderr}"),
    );
    let hint = stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .unwrap_or("")
        .to_owned();
    t.check(
        hint.contains("file-size limit"),
        format!("the hint says what to do: {stderr}"),
    );
    let error = stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("");
    t.saw(&format!(
        "exit={:?} error={error:?} hint={hint:?}",
        out.status.code()
    ));
    let listed = assert_no_partial_backup(&mut t, &dir, MANUAL_SERVER);
    t.check(listed.is_empty(), "nothing is listed");
    assert_store_readable(&mut t, &dir);
    assert_no_remote_temp(&mut t, &remote);

    std::fs::remove_file(blob).unwrap();
    let out = kastell_limited(
        &sandbox,
        &dir,
        2048,
        &["backup", "create", MANUAL_SERVER, "--force"],
    );
    t.check(
        out.status.success(),
        format!(
            "under the limit, the CLI backs up: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    let listed = assert_no_partial_backup(&mut t, &dir, MANUAL_SERVER);
    t.check(listed.len() == 1, "exactly the new backup is listed");
    t.finish();
}

/// A context whose transports record every command, to prove that
/// nothing ran on the server.
pub(super) fn watched_ctx(
    sandbox: &Sandbox,
) -> (Context, Arc<std::sync::Mutex<Vec<Arc<Watched>>>>) {
    let seen: Arc<std::sync::Mutex<Vec<Arc<Watched>>>> = Arc::default();
    let plain = ctx(sandbox);
    let list = seen.clone();
    let factory: ops::TransportFactory = Arc::new(move |record| {
        let watched = Arc::new(Watched::new(plain.transport_for(record), Box::new(|_| {})));
        list.lock().unwrap().push(watched.clone());
        watched as Arc<dyn Transport>
    });
    (ctx(sandbox).with_transport_factory(factory), seen)
}

pub(super) fn commands_run(seen: &std::sync::Mutex<Vec<Arc<Watched>>>) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .map(|w| w.commands().len())
        .sum()
}

/// A backup damaged on disk (a file cut short, a flipped byte, an
/// unreadable manifest): the listing shows what it can tell from sizes,
/// verify finds the rest, and a restore refuses before any command runs on
/// the server (no safety backup is taken either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_is_refused_before_anything_runs_on_the_server() {
    let _serial = SERIAL.lock().await;
    let mut t = Tally::new("local-corrupt-backup", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kastell");
    let sandbox = fleet(&dir).await;
    let (ctx, seen) = watched_ctx(&sandbox);
    let crontab = root(&sandbox).join("etc/crontab");
    let remote = RemoteTemp::snapshot(sandbox.sshd().user());

    type Damage = fn(&Path, &str);
    let damages: [(&str, Damage, &str); 3] = [
        (
            "cut short",
            |file, _| {
                let bytes = std::fs::read(file).unwrap();
                std::fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
            },
            "corrupt",
        ),
        (
            "one flipped byte",
            |file, _| {
                let mut bytes = std::fs::read(file).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x55;
                std::fs::write(file, &bytes).unwrap();
            },
            "complete",
        ),
        (
            "unreadable manifest",
            |_, backup_dir| {
                std::fs::write(
                    Path::new(backup_dir).join(MANIFEST_FILE),
                    "{\"serverName\": tru",
                )
                .unwrap();
            },
            "corrupt",
        ),
    ];
    for (what, damage, listed_as) in damages {
        let created = ops::backup_create(&ctx, Some(MANUAL_SERVER)).await.unwrap();
        let file = Path::new(&created.backup_path).join(&created.files[0]);
        damage(&file, &created.backup_path);
        t.injected(1);
        std::fs::write(&crontab, format!("# changed after the backup ({what})\n")).unwrap();
        sandbox.hosts().hand_over().unwrap();

        let list = ops::backup_list(&ctx, Some(MANUAL_SERVER)).await.unwrap();
        let entry = list
            .backups
            .iter()
            .find(|b| b.backup_id == created.backup_id)
            .unwrap();
        t.check(
            entry.status == listed_as,
            format!("a backup {what} is listed as {listed_as}: {entry:?}"),
        );
        let verified =
            ops::backup_verify(&ctx, Some(MANUAL_SERVER), Some(&created.backup_id)).await;
        t.check(
            verified.as_ref().is_err_and(|e| e.kind == "corrupt"),
            format!("verify finds a backup {what} corrupt: {verified:?}"),
        );

        let before = commands_run(&seen);
        let ids_before: Vec<String> = list.backups.iter().map(|b| b.backup_id.clone()).collect();
        let err = ops::backup_restore(&ctx, Some(MANUAL_SERVER), Some(&created.backup_id))
            .await
            .unwrap_err();
        assert_user_sees(&mut t, &err, &["corrupt"], &[]);
        t.check(
            commands_run(&seen) == before,
            format!("no command ran on the server ({what})"),
        );
        let ids_after: Vec<String> = ops::backup_list(&ctx, Some(MANUAL_SERVER))
            .await
            .unwrap()
            .backups
            .iter()
            .map(|b| b.backup_id.clone())
            .collect();
        t.check(ids_after == ids_before, "no safety backup was taken");
        let now = std::fs::read_to_string(&crontab).unwrap();
        t.check(now.contains(what), "the server's files were not touched");
        // The damaged backup is set aside, so the next round's invariant
        // (no partial backup) is about what the store does.
        std::fs::remove_dir_all(&created.backup_path).unwrap();
    }
    assert_no_partial_backup(&mut t, &dir, MANUAL_SERVER);
    assert_store_readable(&mut t, &dir);
    assert_no_remote_temp(&mut t, &remote);
    t.finish();
}
