//! Tests for the directory lock.

use super::*;
use kastell_core::ErrorKind;

fn quick() -> LockOptions {
    LockOptions {
        wait: Duration::from_millis(300),
        ..LockOptions::default()
    }
}

fn plant(dir: &Path, owner: &LockOwner) {
    std::fs::create_dir(dir).unwrap();
    std::fs::write(dir.join(OWNER_FILE), owner.render()).unwrap();
}

fn dead_pid() -> i32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    child.wait().unwrap();
    pid
}

fn ago(secs: u64) -> u64 {
    now_ms() - secs * 1000
}

fn lock_path() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("servers.json.lock");
    (tmp, dir)
}

#[test]
fn owner_format_round_trips_and_refuses_garbage() {
    let owner = LockOwner {
        pid: 4242,
        host: "build-host".into(),
        since_ms: 1_742_050_000_000,
    };
    assert_eq!(owner.render(), "4242@build-host@1742050000000");
    assert_eq!(LockOwner::parse(&owner.render()), Some(owner));
    assert_eq!(
        LockOwner::parse("7@a@b@5\n").map(|o| o.host),
        Some("a@b".to_owned())
    );
    for bad in ["", "x@h@1", "1@h", "1@h@x", "1"] {
        assert_eq!(LockOwner::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn acquire_writes_owner_and_release_removes_the_directory() {
    let (_tmp, dir) = lock_path();
    let lock = StoreLock::acquire(&dir, &quick()).unwrap();
    let owner = LockOwner::parse(&std::fs::read_to_string(dir.join(OWNER_FILE)).unwrap()).unwrap();
    assert_eq!(owner.pid, i32::try_from(std::process::id()).unwrap());
    assert_eq!(owner.host, hostname());
    lock.release().unwrap();
    assert!(!dir.exists());

    let lock = StoreLock::acquire(&dir, &quick()).unwrap();
    drop(lock);
    assert!(!dir.exists(), "drop releases the lock");
}

#[test]
fn a_dead_owner_on_this_host_is_broken_at_once() {
    let (_tmp, dir) = lock_path();
    plant(
        &dir,
        &LockOwner {
            pid: dead_pid(),
            host: hostname(),
            since_ms: now_ms(),
        },
    );
    let start = Instant::now();
    let lock = StoreLock::acquire(&dir, &quick()).unwrap();
    assert!(start.elapsed() < Duration::from_millis(250));
    lock.release().unwrap();
    // The broken lock was moved aside and deleted: nothing else remains.
    assert_eq!(std::fs::read_dir(dir.parent().unwrap()).unwrap().count(), 0);
}

#[test]
fn an_old_lock_of_unknown_liveness_is_broken() {
    let (_tmp, dir) = lock_path();
    plant(
        &dir,
        &LockOwner {
            pid: 1,
            host: "some-other-host".into(),
            since_ms: ago(31),
        },
    );
    StoreLock::acquire(&dir, &quick())
        .unwrap()
        .release()
        .unwrap();
}

#[test]
fn a_live_owner_past_the_hard_ceiling_is_broken() {
    let (_tmp, dir) = lock_path();
    plant(
        &dir,
        &LockOwner {
            pid: i32::try_from(std::process::id()).unwrap(),
            host: hostname(),
            since_ms: ago(61),
        },
    );
    StoreLock::acquire(&dir, &quick())
        .unwrap()
        .release()
        .unwrap();
}

#[test]
fn a_live_lock_makes_others_wait_then_fail_naming_the_holder() {
    let (_tmp, dir) = lock_path();
    let holder = LockOwner {
        pid: i32::try_from(std::process::id()).unwrap(),
        host: hostname(),
        since_ms: ago(40),
    };
    plant(&dir, &holder);
    let start = Instant::now();
    let err = StoreLock::acquire(&dir, &quick()).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.is_retryable());
    assert!(
        err.message().contains(&format!("pid {}", holder.pid)),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("rm -r"));
    // The live lock was left alone.
    assert_eq!(
        std::fs::read_to_string(dir.join(OWNER_FILE)).unwrap(),
        holder.render()
    );
}

#[test]
fn a_young_lock_from_another_host_is_respected() {
    let (_tmp, dir) = lock_path();
    plant(
        &dir,
        &LockOwner {
            pid: 99,
            host: "elsewhere".into(),
            since_ms: ago(5),
        },
    );
    assert!(StoreLock::acquire(&dir, &quick()).is_err());
    assert!(dir.join(OWNER_FILE).exists());
}

#[test]
fn a_waiter_gets_the_lock_once_it_is_released() {
    let (_tmp, dir) = lock_path();
    let first = StoreLock::acquire(&dir, &quick()).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        first.release().unwrap();
    });
    let opts = LockOptions {
        wait: Duration::from_secs(5),
        ..LockOptions::default()
    };
    let second = StoreLock::acquire(&dir, &opts).unwrap();
    releaser.join().unwrap();
    second.release().unwrap();
}

#[test]
fn release_leaves_a_lock_taken_over_by_someone_else() {
    let (_tmp, dir) = lock_path();
    let lock = StoreLock::acquire(&dir, &quick()).unwrap();
    std::fs::write(dir.join(OWNER_FILE), "1@elsewhere@1").unwrap();
    lock.release().unwrap();
    assert!(dir.join(OWNER_FILE).exists());
}

#[test]
fn a_lock_is_never_visible_without_its_owner_and_abandoned_claims_are_swept() {
    let (tmp, dir) = lock_path();
    // A process that died after preparing its claim, before renaming it.
    let abandoned = tmp
        .path()
        .join(format!("servers.json.lock.claim-{}-1", dead_pid()));
    std::fs::create_dir(&abandoned).unwrap();
    std::fs::write(abandoned.join(OWNER_FILE), "half").unwrap();
    let lock = StoreLock::acquire(&dir, &quick()).unwrap();
    assert!(dir.join(OWNER_FILE).is_file(), "taken with its owner");
    assert!(!abandoned.exists(), "the abandoned claim was swept");
    // A second claim while it is held fails without disturbing it.
    assert!(StoreLock::try_claim(&dir).unwrap().is_none());
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["servers.json.lock".to_owned()],
        "no claim left over"
    );
    lock.release().unwrap();
    assert!(!dir.exists());
}
