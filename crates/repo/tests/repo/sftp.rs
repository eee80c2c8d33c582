//! A repository on a real OpenSSH server (the testkit's private sshd on
//! loopback, with its internal SFTP server) over SFTP: stored and read
//! back through kastell, read by stock restic over SFTP, refused when the
//! host key is not pinned or the key is wrong, checked after damage, and
//! carried on after the session dies.

use std::process::Command;

use crate::stream::{one_pass_round_trip, restic_reads_the_round_trip};
use crate::support::sftp::Server;
use crate::support::{PASSWORD, entry, noise, restic_ok, tags, walk};
use kastell_core::ErrorKind;
use kastell_repo::BackupRepository;
use kastell_repo::backend;
use rustic_core::{BytesList, FileType, Id};

#[test]
fn kastell_stores_over_sftp_and_stock_restic_reads_it_over_sftp() {
    let server = Server::start();
    let at = server.location("fleet/repo");
    let credentials = server.credentials();
    let dump = noise(21, 3 << 20);
    let manifest = br#"{"id":"b1"}"#.to_vec();

    let repo = BackupRepository::init_with(&at, PASSWORD, &credentials).unwrap();
    let first = repo
        .store(
            "web-1",
            &tags("b1"),
            vec![entry("db.dump", &dump), entry("manifest.json", &manifest)],
        )
        .unwrap();
    // Opened again from scratch, as the next backup would be.
    let repo = BackupRepository::open_with(&at, PASSWORD, &credentials).unwrap();
    let second = repo
        .store("web-1", &tags("b2"), vec![entry("db.dump", &dump)])
        .unwrap();
    assert!(
        second.added_bytes < dump.len() as u64 / 20,
        "unchanged data added {} bytes over SFTP",
        second.added_bytes
    );
    let listed: Vec<String> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![first.id.clone(), second.id.clone()]);
    let mut read_back = Vec::new();
    repo.read(&first.id[..8], "db.dump", &mut read_back)
        .unwrap();
    assert!(read_back == dump, "kastell read back other bytes");
    let report = repo.check(true).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let absent = repo
        .read(&first.id, "nothing.dump", &mut Vec::new())
        .unwrap_err();
    assert_eq!(absent.kind(), ErrorKind::NotFound, "{absent}");
    drop(repo);

    // Every file arrived whole under its own name: no temporary is left.
    let on_disk = walk(&server.path("fleet/repo"));
    assert!(on_disk.iter().any(|p| p.ends_with("config")));
    let leftovers: Vec<_> = on_disk
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Stock restic, over SFTP through OpenSSH's client, pinning the same key.
    let (repo_arg, command) = server.restic_sftp("fleet/repo");
    let sftp = ["-o", command.as_str()];
    let json = restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[&sftp[..], &["snapshots", "--json"]].concat(),
    );
    let snapshots: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let ids: Vec<&str> = snapshots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.id.as_str(), second.id.as_str()]);
    assert_eq!(snapshots[0]["hostname"], "web-1");
    let restored = restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[&sftp[..], &["dump", &first.id, "/db.dump"]].concat(),
    );
    assert!(restored == dump, "restic's dump over SFTP differs");
    restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[&sftp[..], &["check", "--read-data"]].concat(),
    );
}

/// The streaming writer over SFTP (one SSH session shared by the packer
/// thread and the writer), read back by stock restic over SFTP: every
/// pack checked, both snapshots restored byte for byte.
#[test]
fn a_one_pass_write_over_sftp_is_read_back_by_restic() {
    let server = Server::start();
    let at = server.location("one-pass");
    let repo = BackupRepository::init_with(&at, PASSWORD, &server.credentials()).unwrap();
    let (first, second) = one_pass_round_trip(&repo);
    drop(repo);
    let (repo_arg, command) = server.restic_sftp("one-pass");
    restic_reads_the_round_trip(
        &|args| {
            restic_ok(
                &repo_arg,
                PASSWORD,
                None,
                &[&["-o", command.as_str()][..], args].concat(),
            )
        },
        &first,
        &second,
    );
}

#[test]
fn files_are_renamed_into_place_and_only_the_config_is_ever_replaced() {
    let server = Server::start();
    let at = server.location("raw");
    let store = backend::open(&at, &server.credentials()).unwrap();
    store.create().unwrap();
    for dir in ["keys", "snapshots", "index", "locks", "data/00", "data/ff"] {
        assert!(server.path("raw").join(dir).is_dir(), "{dir} missing");
    }
    let id: Id = "0b1d2f00000000000000000000000000000000000000000000000000000000aa"
        .parse()
        .unwrap();
    store
        .write_bytes(
            FileType::Index,
            &id,
            false,
            BytesList::from(b"first".to_vec()),
        )
        .unwrap();
    // OpenSSH's server refuses to rename over a file; a file named by its
    // content's hash is kept as it is.
    store
        .write_bytes(
            FileType::Index,
            &id,
            false,
            BytesList::from(b"again".to_vec()),
        )
        .unwrap();
    assert_eq!(
        &store.read_full(FileType::Index, &id).unwrap()[..],
        b"first"
    );
    store
        .write_bytes(
            FileType::Config,
            &id,
            false,
            BytesList::from(b"one".to_vec()),
        )
        .unwrap();
    store
        .write_bytes(
            FileType::Config,
            &id,
            false,
            BytesList::from(b"two".to_vec()),
        )
        .unwrap();
    assert_eq!(&store.read_full(FileType::Config, &id).unwrap()[..], b"two");
    assert_eq!(store.list_with_size(FileType::Config).unwrap().len(), 1);
    assert_eq!(
        store.list_with_size(FileType::Index).unwrap(),
        vec![(id, 5)]
    );
    assert_eq!(
        &store
            .read_partial(FileType::Index, &id, false, 1, 3)
            .unwrap()[..],
        b"irs"
    );
    // A pack goes under data/<first two hex digits>/.
    store
        .write_bytes(FileType::Pack, &id, false, BytesList::from(vec![7; 1000]))
        .unwrap();
    assert!(
        server
            .path("raw")
            .join("data/0b")
            .join(id.to_hex().as_str())
            .is_file()
    );
    store.remove(FileType::Index, &id, false).unwrap();
    let error = store.read_full(FileType::Index, &id).unwrap_err();
    assert!(error.to_string().contains("index/"), "{error}");
    assert!(store.list_with_size(FileType::Index).unwrap().is_empty());
    assert!(
        store.location().starts_with("sftp://"),
        "{}",
        store.location()
    );
}

#[test]
fn a_host_key_known_hosts_does_not_pin_is_refused() {
    let server = Server::start();
    let at = server.location("repo");
    BackupRepository::init_with(&at, PASSWORD, &server.credentials()).unwrap();
    let key = server.fixture.sshd.ed25519_key();
    let file = server.dir.path().join("other_known_hosts");
    let open = |known_hosts: &str| {
        std::fs::write(&file, known_hosts).unwrap();
        BackupRepository::open_with(
            &at,
            PASSWORD,
            &server.credentials_with(key.clone(), file.clone()),
        )
    };

    // Unknown: nothing pinned for this host and port.
    let error = open("# empty\n").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(error.message().contains("not a known host"), "{error}");
    assert!(
        error
            .message()
            .contains(server.fixture.sshd.host_key_fingerprint()),
        "the message shows the presented fingerprint: {error}"
    );
    let hint = error.hint().unwrap();
    assert!(
        hint.contains(&format!(
            "ssh-keyscan -p {} 127.0.0.1 >> {}",
            server.port(),
            file.display()
        )),
        "{hint}"
    );
    assert!(!error.is_retryable());

    // The right key pinned for port 22 is not a pin for this port (as ssh).
    let line = server.pin_line("host_ed25519.pub");
    let port_22 = line.replace(&format!("[127.0.0.1]:{}", server.port()), "127.0.0.1");
    let error = open(&port_22).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");

    // Changed: another key pinned for this host and port.
    let error = open(&server.pin_line("stranger_ed25519.pub")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::HostKeyMismatch, "{error}");
    assert!(error.message().contains("changed"), "{error}");
    assert!(!error.is_retryable());
    assert!(error.hint().unwrap().contains("intercepting"));

    // Only another key type pinned: the server cannot present one.
    let rsa = std::fs::read_to_string(server.fixture.sshd.dir().join("client_rsa.pub")).unwrap();
    let error = open(&format!("[127.0.0.1]:{} {}", server.port(), rsa.trim())).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(error.message().contains("ssh-rsa"), "{error}");
    assert!(error.hint().unwrap().contains("ssh-keyscan"), "{error}");

    // Revoked, even when pinned as well.
    let key_part = line.split_once(' ').unwrap().1;
    let error = open(&format!("{line}\n@revoked * {key_part}\n")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::HostKeyMismatch, "{error}");
    assert!(error.message().contains("revoked"), "{error}");

    // A missing known_hosts file says how to make one.
    let error = BackupRepository::open_with(
        &at,
        PASSWORD,
        &server.credentials_with(key.clone(), server.dir.path().join("absent")),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigInvalid, "{error}");
    assert!(
        error
            .hint()
            .unwrap()
            .contains(&format!("ssh-keyscan -p {} 127.0.0.1 >> ", server.port())),
        "{error}"
    );

    // A hashed entry (ssh-keygen -H), beside other hosts' lines, pins it.
    std::fs::write(
        &file,
        format!(
            "{}\n{line}\n",
            server
                .pin_line("stranger_ed25519.pub")
                .replace("127.0.0.1", "10.9.9.9")
        ),
    )
    .unwrap();
    let hashed = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        hashed.status.success(),
        "{}",
        String::from_utf8_lossy(&hashed.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let repo =
        BackupRepository::open_with(&at, PASSWORD, &server.credentials_with(key, file.clone()))
            .unwrap();
    assert!(repo.snapshots().unwrap().is_empty());
}

#[test]
fn a_wrong_identity_or_none_is_refused_clearly() {
    let server = Server::start();
    let at = server.location("repo");
    BackupRepository::init_with(&at, PASSWORD, &server.credentials()).unwrap();

    let stranger = server.fixture.sshd.stranger_key();
    let error = BackupRepository::open_with(
        &at,
        PASSWORD,
        &server.credentials_with(stranger.clone(), server.known_hosts.clone()),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
    assert!(error.message().contains("refused the SSH key"), "{error}");
    assert!(
        error.message().contains(&stranger.display().to_string()),
        "{error}"
    );
    assert!(error.hint().unwrap().contains("authorized_keys"));
    assert!(!error.is_retryable());

    let error = BackupRepository::open_with(
        &at,
        PASSWORD,
        &server.credentials_with(
            server.dir.path().join("no_such_key"),
            server.known_hosts.clone(),
        ),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigInvalid, "{error}");
    assert!(error.message().contains("no_such_key"), "{error}");

    let not_a_key = server.dir.path().join("not_a_key");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    let error = BackupRepository::open_with(
        &at,
        PASSWORD,
        &server.credentials_with(not_a_key, server.known_hosts.clone()),
    )
    .unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::ConfigInvalid | ErrorKind::Unauthenticated
        ),
        "{error}"
    );

    // The S3-or-local shorthand has no key for SFTP.
    let error = BackupRepository::open(&at, PASSWORD, None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
    assert!(error.hint().unwrap().contains("known_hosts"));

    // The repository password is still checked after the SSH login.
    let error =
        BackupRepository::open_with(&at, "wrong password", &server.credentials()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
    assert!(error.to_string().contains("password"), "{error}");
}

#[test]
fn a_corrupted_pack_is_found_by_a_check_over_sftp() {
    let server = Server::start();
    let at = server.location("repo");
    let repo = BackupRepository::init_with(&at, PASSWORD, &server.credentials()).unwrap();
    repo.store("h", &tags("b1"), vec![entry("db.dump", noise(4, 2 << 20))])
        .unwrap();
    assert!(repo.check(true).unwrap().is_ok());

    let biggest = walk(&server.path("repo").join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&biggest, bytes).unwrap();

    let report = repo.check(true).unwrap();
    assert!(
        !report.is_ok(),
        "check over SFTP missed a flipped byte: {report:?}"
    );
}

#[test]
fn a_dead_session_is_replaced_and_a_dead_server_is_unavailable() {
    let mut server = Server::start();
    let at = server.location("repo");
    let repo = BackupRepository::init_with(&at, PASSWORD, &server.credentials()).unwrap();
    let data = noise(9, 1 << 20);
    let first = repo
        .store("h", &tags("b1"), vec![entry("db.dump", &data)])
        .unwrap();

    assert!(
        server.fixture.sshd.kill_sessions() > 0,
        "no session to kill"
    );
    let listed = repo.snapshots().unwrap();
    assert_eq!(listed.len(), 1);
    server.fixture.sshd.kill_sessions();
    let second = repo
        .store("h", &tags("b2"), vec![entry("db.dump", &data)])
        .unwrap();
    server.fixture.sshd.kill_sessions();
    let mut back = Vec::new();
    repo.read(&second.id, "db.dump", &mut back).unwrap();
    assert!(back == data);
    assert!(repo.check(false).unwrap().is_ok());

    server.fixture.sshd.stop();
    let error = repo
        .read(&first.id, "db.dump", &mut Vec::new())
        .unwrap_err();
    assert!(
        error.kind() == ErrorKind::Unavailable && error.is_retryable(),
        "{:?}: {error}",
        error.kind()
    );
    assert!(error.hint().is_some(), "{error}");
    let error = BackupRepository::open_with(&at, PASSWORD, &server.credentials()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.hint().unwrap().contains("SSH server"), "{error}");
}
