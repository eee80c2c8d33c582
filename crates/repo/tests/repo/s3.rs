//! A repository in a real S3 server (SeaweedFS on loopback): stored
//! through object_store, read back by stock restic, and nothing listed
//! half-written when the server dies mid-upload.

use std::io::Read;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::stream::{one_pass_round_trip, restic_reads_the_round_trip};
use crate::support::{BUCKET, PASSWORD, SeaweedS3, credentials, entry, noise, restic_ok, tags};
use kastell_core::ErrorKind;
use kastell_repo::append_only::{self, Attempt};
use kastell_repo::backend::{BackendCredentials, S3Credentials};
use kastell_repo::{BackupRepository, RepoLocation, StoredEntry};

/// Runs `work` on a blocking thread of a tokio runtime, as kastell does.
fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async { tokio::task::spawn_blocking(work).await })
        .unwrap()
}

fn location(server: &SeaweedS3, prefix: &str) -> RepoLocation {
    RepoLocation::parse(&format!("s3:{}/{BUCKET}/{prefix}", server.endpoint)).unwrap()
}

/// One server for all the trials, run in turn (several SeaweedFS at once
/// compete for their many ports); the crash trial goes last.
#[test]
fn a_repository_on_a_real_s3_server() {
    let mut server = SeaweedS3::start();
    stock_restic_restores_a_backup_kastell_stored_in_s3(&server);
    a_one_pass_write_into_s3_is_read_back_by_restic(&server);
    a_full_access_key_is_not_append_only(&server);
    wrong_s3_keys_and_a_wrong_password_are_told_apart(&server);
    the_server_killed_mid_upload_leaves_no_listed_backup_and_the_earlier_ones_intact(&mut server);
}

/// SeaweedFS's keys here may delete: the canary check must say so (and
/// SeaweedFS would not enforce Object Lock on a delete anyway). The canary
/// sits at the prefix's root, outside restic's directories, and is reused.
fn a_full_access_key_is_not_append_only(server: &SeaweedS3) {
    let at = location(server, "canary");
    let keys = BackendCredentials::s3(Some(&credentials(server)));
    for _ in 0..2 {
        let checked = at.clone();
        let with = keys.clone();
        let report = blocking(move || append_only::probe(&checked, &with)).unwrap();
        assert_eq!(report.canary, "canary/kastell-canary", "{report:?}");
        assert_eq!(report.delete, Attempt::Allowed, "{report:?}");
        assert_eq!(report.overwrite, Attempt::Allowed, "{report:?}");
        assert!(!report.is_append_only());
    }
    // Wrong keys prove nothing: an error, not a verdict.
    let wrong = BackendCredentials::s3(Some(&S3Credentials {
        access_key_id: "nobody".into(),
        secret_access_key: "wrong-secret".into(),
    }));
    let error = blocking(move || append_only::probe(&at, &wrong)).unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
        ),
        "{error}"
    );
    assert!(!error.to_string().contains("wrong-secret"), "{error}");
}

fn stock_restic_restores_a_backup_kastell_stored_in_s3(server: &SeaweedS3) {
    let at = location(server, "servers");
    let keys = credentials(server);
    let dump = noise(5, 6 << 20);
    let expected = dump.clone();
    let (first, second) = blocking(move || {
        let repo = BackupRepository::init(&at, PASSWORD, Some(&keys)).unwrap();
        let first = repo
            .store("web-1", &tags("b1"), vec![entry("db.dump", dump.clone())])
            .unwrap();
        // Opened again from scratch, as the next backup would be.
        let repo = BackupRepository::open(&at, PASSWORD, Some(&keys)).unwrap();
        let second = repo
            .store("web-1", &tags("b2"), vec![entry("db.dump", dump)])
            .unwrap();
        let mut read_back = Vec::new();
        repo.read(&first.id, "db.dump", &mut read_back).unwrap();
        assert!(read_back == expected);
        assert!(repo.check(true).unwrap().is_ok());
        (first, second)
    });
    assert!(
        second.added_bytes < first.added_bytes / 20,
        "unchanged data added {} bytes the second time (first: {})",
        second.added_bytes,
        first.added_bytes
    );

    let url = format!("s3:{}/{BUCKET}/servers", server.endpoint);
    let creds = Some(&credentials(server));
    restic_ok(&url, PASSWORD, creds, &["check", "--read-data"]);
    let restored = restic_ok(&url, PASSWORD, creds, &["dump", &first.id, "/db.dump"]);
    assert!(restored == noise(5, 6 << 20), "restic's dump differs");
}

/// The streaming writer into S3: packs uploaded from its packer thread
/// (not a runtime thread), an entry taken unread from the first snapshot,
/// and stock restic checking every pack and restoring both snapshots.
fn a_one_pass_write_into_s3_is_read_back_by_restic(server: &SeaweedS3) {
    let at = location(server, "one-pass");
    let keys = credentials(server);
    let (first, second) = blocking(move || {
        let repo = BackupRepository::init(&at, PASSWORD, Some(&keys)).unwrap();
        one_pass_round_trip(&repo)
    });
    let url = format!("s3:{}/{BUCKET}/one-pass", server.endpoint);
    let keys = credentials(server);
    restic_reads_the_round_trip(
        &|args| restic_ok(&url, PASSWORD, Some(&keys), args),
        &first,
        &second,
    );
}

fn wrong_s3_keys_and_a_wrong_password_are_told_apart(server: &SeaweedS3) {
    let at = location(server, "keys");
    let good = credentials(server);
    let bad = S3Credentials {
        access_key_id: server.credentials.access_key_id.clone(),
        secret_access_key: "not-the-secret-key".to_owned(),
    };
    blocking(move || {
        BackupRepository::init(&at, PASSWORD, Some(&good)).unwrap();
        let error = BackupRepository::open(&at, PASSWORD, Some(&bad)).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(
            matches!(
                error.kind(),
                ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
            ),
            "{text}"
        );
        assert!(!text.contains("not-the-secret-key"), "{text}");
        let error = BackupRepository::open(&at, "wrong password", Some(&good)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
        let error = BackupRepository::open(&at, PASSWORD, None).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
        assert!(error.hint().unwrap().contains("AWS_ACCESS_KEY_ID"));
    });
}

/// Yields `total` bytes of noise and kills the S3 server once `kill_at`
/// bytes have been read.
struct KillingReader {
    data: std::io::Cursor<Vec<u8>>,
    kill_at: u64,
    pid: u32,
    killed: Arc<AtomicBool>,
}

impl Read for KillingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.position() >= self.kill_at && !self.killed.swap(true, Ordering::SeqCst) {
            let status = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        self.data.read(buf)
    }
}

fn the_server_killed_mid_upload_leaves_no_listed_backup_and_the_earlier_ones_intact(
    server: &mut SeaweedS3,
) {
    let at = location(server, "crash");
    let keys = credentials(server);
    let pid = server.pid();
    let killed = Arc::new(AtomicBool::new(false));
    let killed_in_store = Arc::clone(&killed);
    let (kept, error) = {
        let at = at.clone();
        blocking(move || {
            let repo = BackupRepository::init(&at, PASSWORD, Some(&keys)).unwrap();
            let kept = repo
                .store(
                    "db-1",
                    &tags("before"),
                    vec![entry("db.dump", noise(1, 1 << 20))],
                )
                .unwrap();
            let total = 48 << 20;
            let reader = KillingReader {
                data: std::io::Cursor::new(noise(2, total)),
                kill_at: 24 << 20,
                pid,
                killed: killed_in_store,
            };
            let dying = StoredEntry {
                name: "db.dump".to_owned(),
                size: total as u64,
                reader: Box::new(reader),
                key: None,
            };
            let error = repo
                .store("db-1", &tags("during"), vec![dying])
                .unwrap_err();
            (kept, error)
        })
    };
    assert!(killed.load(Ordering::SeqCst), "the server was never killed");
    assert!(
        error.is_retryable() || error.kind() == ErrorKind::Unavailable,
        "{error}"
    );
    assert!(error.hint().is_some(), "{error}");

    server.restart();
    let keys = credentials(server);
    let listed = blocking(move || {
        let repo = BackupRepository::open(&at, PASSWORD, Some(&keys)).unwrap();
        let listed = repo.snapshots().unwrap();
        let report = repo.check(true).unwrap();
        assert!(report.is_ok(), "{report:?}");
        listed
    });
    let ids: Vec<_> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![kept.id.as_str()],
        "only the complete backup is listed"
    );
}
