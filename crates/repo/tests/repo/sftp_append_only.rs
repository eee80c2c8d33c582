//! An append-only SFTP login on a real OpenSSH server (the testkit's
//! sshd, its non-root login user, the agent's key behind the forced
//! `sftp-server` line kastell prints): backups go in and are read back,
//! the server itself refuses every delete and overwrite through that
//! login (shown with raw SFTP requests, not kastell's code), the canary
//! check tells it from a full-access login, the operator's key prunes,
//! and stock restic still reads the repository.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use crate::support::sftp::Server;
use crate::support::{PASSWORD, entry, noise, restic_ok, tags, walk};
use kastell_core::ErrorKind;
use kastell_repo::BackupRepository;
use kastell_repo::append_only::{self, Attempt};
use kastell_repo::backend;
use rustic_core::{BytesList, FileType, Id};
use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, Session, Sftp};

/// SFTP's "permission denied" status.
const FX_PERMISSION_DENIED: i32 = 3;

/// A raw SFTP session as `key`, straight through libssh2: what any client
/// holding the agent's key could send.
fn raw_sftp(server: &Server, key: &Path) -> (Session, Sftp) {
    let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let mut session = Session::new().unwrap();
    session.set_tcp_stream(stream);
    session.handshake().unwrap();
    session
        .userauth_pubkey_file(server.user(), None, key, None)
        .unwrap();
    let sftp = session.sftp().unwrap();
    (session, sftp)
}

/// Asserts the server answered `result` with "permission denied".
fn refused<T>(what: &str, result: Result<T, ssh2::Error>) {
    match result {
        Ok(_) => panic!("the server let the append-only login {what}"),
        Err(e) => assert_eq!(
            e.code(),
            ErrorCode::SFTP(FX_PERMISSION_DENIED),
            "{what}: {e}"
        ),
    }
}

fn files_and_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    all.sort();
    all
}

#[test]
fn an_append_only_login_adds_backups_the_server_will_not_let_it_remove_or_overwrite() {
    let server = Server::start();
    let agent_key = server.append_only_key();
    let at = server.location("repo");
    let root = server.path("repo");
    let operator = server.credentials();
    let agent = server.credentials_with(agent_key.clone(), server.known_hosts.clone());

    // The operator's login creates the repository and its directories.
    BackupRepository::init_with(&at, PASSWORD, &operator).unwrap();
    // The agent's login backs up, twice (the second deduplicated), lists
    // and reads back.
    let dump = noise(31, 2 << 20);
    let repo = BackupRepository::open_with(&at, PASSWORD, &agent).unwrap();
    let first = repo
        .store("web-1", &tags("b1"), vec![entry("db.dump", &dump)])
        .unwrap();
    let repo = BackupRepository::open_with(&at, PASSWORD, &agent).unwrap();
    let second = repo
        .store("web-1", &tags("b2"), vec![entry("db.dump", &dump)])
        .unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 2);
    let mut back = Vec::new();
    repo.read(&first.id, "db.dump", &mut back).unwrap();
    assert!(back == dump, "read back other bytes");
    assert!(repo.check(true).unwrap().is_ok());

    // A file that exists already is kept, and no temporary it could not
    // remove is left beside it.
    let store = backend::open(&at, &agent).unwrap();
    let (index_id, _) = store.list_with_size(FileType::Index).unwrap()[0];
    store
        .write_bytes(
            FileType::Index,
            &index_id,
            false,
            BytesList::from(b"other bytes".to_vec()),
        )
        .unwrap();
    let leftovers: Vec<_> = walk(&root)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // Through kastell's own backend the agent cannot remove either.
    let error = store
        .remove(FileType::Snapshot, &second.id.parse::<Id>().unwrap(), false)
        .unwrap_err();
    assert!(error.to_string().contains("permission"), "{error}");

    // Raw requests with the agent's key: the server refuses each.
    let before = files_and_bytes(&root);
    let (_session, sftp) = raw_sftp(&server, &agent_key);
    let snapshot = root.join("snapshots").join(&first.id);
    let config = root.join("config");
    let pack = walk(&root.join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    for victim in [&snapshot, &config, &pack] {
        refused("remove a file", sftp.unlink(victim));
        refused(
            "open a file for writing",
            sftp.open_mode(
                victim,
                OpenFlags::WRITE | OpenFlags::TRUNCATE,
                0o600,
                OpenType::File,
            ),
        );
        refused(
            "open a file to append",
            sftp.open_mode(
                victim,
                OpenFlags::WRITE | OpenFlags::APPEND,
                0o600,
                OpenType::File,
            ),
        );
        refused(
            "make a file writable",
            sftp.setstat(
                victim,
                FileStat {
                    size: None,
                    uid: None,
                    gid: None,
                    perm: Some(0o600),
                    atime: None,
                    mtime: None,
                },
            ),
        );
        refused(
            "truncate a file",
            sftp.setstat(
                victim,
                FileStat {
                    size: Some(0),
                    uid: None,
                    gid: None,
                    perm: None,
                    atime: None,
                    mtime: None,
                },
            ),
        );
    }
    refused("remove a directory", sftp.rmdir(&root.join("locks")));
    refused(
        "make a directory",
        sftp.mkdir(&root.join("elsewhere"), 0o700),
    );
    refused(
        "make a symlink",
        sftp.symlink(&snapshot, &root.join("snapshots").join("link")),
    );
    // A new file of its own is read-only at once: it cannot be reopened
    // for writing, and renaming it over an existing file fails.
    let fresh = root.join("snapshots").join("new-file");
    let mut file = sftp
        .open_mode(
            &fresh,
            OpenFlags::WRITE | OpenFlags::EXCLUSIVE,
            0o644,
            OpenType::File,
        )
        .unwrap();
    file.write_all(b"replacement").unwrap();
    drop(file);
    refused(
        "reopen its own file for writing",
        sftp.open_mode(&fresh, OpenFlags::WRITE, 0o644, OpenType::File),
    );
    assert!(
        sftp.rename(&fresh, &snapshot, None).is_err(),
        "renamed over an existing snapshot"
    );
    // Reading still works.
    let mut text = Vec::new();
    sftp.open(&config).unwrap().read_to_end(&mut text).unwrap();
    assert!(!text.is_empty());
    drop(sftp);
    let mut after = files_and_bytes(&root);
    after.retain(|(p, _)| p != &fresh);
    assert!(before == after, "a repository file changed or went away");
    std::fs::remove_file(&fresh).unwrap();

    // The canary check (kastell doctor's) tells the two logins apart, and
    // leaves one canary behind at most.
    for _ in 0..2 {
        let report = append_only::probe(&at, &agent).unwrap();
        assert!(report.is_append_only(), "{report:?}");
    }
    let canary = root.join(append_only::CANARY_NAME);
    assert!(canary.is_file());
    let report = append_only::probe(&at, &operator).unwrap();
    assert_eq!(
        (report.overwrite, report.delete),
        (Attempt::Allowed, Attempt::Allowed),
        "{report:?}"
    );
    assert!(!report.is_append_only());
    assert!(!canary.exists(), "the full-access login deleted it");

    // Pruning: refused through the agent's login, done with the operator's.
    let error = repo.forget(std::slice::from_ref(&first.id)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert_eq!(repo.snapshots().unwrap().len(), 2);
    let admin = BackupRepository::open_with(&at, PASSWORD, &operator).unwrap();
    admin.forget(std::slice::from_ref(&first.id)).unwrap();
    admin.prune().unwrap();
    let left: Vec<String> = admin
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![second.id.clone()]);

    // Stock restic, over SFTP with the operator's key, reads it all.
    let (repo_arg, command) = server.restic_sftp("repo");
    let sftp = ["-o", command.as_str()];
    restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[&sftp[..], &["check", "--read-data"]].concat(),
    );
    let json = restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[&sftp[..], &["snapshots", "--json"]].concat(),
    );
    let listed: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(listed[0]["id"], second.id.as_str());
    let restored = restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[&sftp[..], &["dump", &second.id, "/db.dump"]].concat(),
    );
    assert!(restored == dump, "restic restored other bytes");
}

/// The `sshd_config` alternative `repo init --append-only-key` prints is
/// accepted by OpenSSH's own check (`sshd -t`).
#[test]
fn the_sshd_config_block_passes_sshd_t() {
    let dir = tempfile::tempdir().unwrap();
    let host_key = dir.path().join("host_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "HostKey {}\nSubsystem sftp internal-sftp\n{}",
            host_key.display(),
            append_only::sshd_config_block("kastell-append")
        ),
    )
    .unwrap();
    let checked = std::process::Command::new("/usr/sbin/sshd")
        .arg("-t")
        .arg("-f")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}
