//! Tests for [`FleetStore`].

use super::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;

/// The §2.2 example, a bare record without platform, and a record with an
/// unknown provider plus fields kastell has never heard of, exactly as the
/// original tool writes them.
const ORIGINAL: &str = r#"[
  {
    "id": "manual-1742050000000",
    "name": "web-1",
    "provider": "hetzner",
    "ip": "203.0.113.10",
    "region": "unknown",
    "size": "unknown",
    "createdAt": "2026-03-15T12:00:00.000Z",
    "mode": "coolify",
    "platform": "dokploy"
  },
  {
    "id": "48151623",
    "name": "bare-box",
    "provider": "digitalocean",
    "ip": "198.51.100.20",
    "region": "fra1",
    "size": "s-1vcpu-1gb",
    "createdAt": "2026-01-02T03:04:05.678Z",
    "mode": "bare"
  },
  {
    "id": "x-77",
    "name": "legacy-acme",
    "provider": "acmecloud",
    "ip": "198.51.100.30",
    "region": "mars-1",
    "size": "huge",
    "createdAt": "2025-12-31T23:59:59.999Z",
    "mode": "coolify",
    "domain": "panel.example.com",
    "labels": {"team": "ops", "tier": 2},
    "futureFlag": true,
    "notes": [1, "two", null]
  }
]"#;

fn store() -> (tempfile::TempDir, FleetStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = FleetStore::open(tmp.path().join("kastell")).unwrap();
    (tmp, store)
}

fn file_json(store: &FleetStore) -> Value {
    serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap()
}

fn manual(name: &str, ip: &str) -> ServerRecord {
    ServerRecord::new("manual-1742050000000", name, ip)
}

#[test]
fn original_format_round_trips_without_loss() {
    let (_tmp, store) = store();
    std::fs::write(store.path(), ORIGINAL).unwrap();
    let records = store.servers().unwrap();
    assert_eq!(records.len(), 3, "unknown-provider records are not dropped");
    assert_eq!(records[0].resolve_platform(), Some("dokploy"));
    assert!(records[0].is_manual());
    assert_eq!(records[1].resolve_platform(), None);
    assert!(records[1].is_bare());
    assert_eq!(records[2].unknown_provider(), Some("acmecloud"));
    assert_eq!(
        records[2].extra["labels"],
        json!({"team": "ops", "tier": 2})
    );

    // A rewrite (adding a server) keeps every original element intact.
    store
        .add(ServerRecord::new("manual-1", "new-one", "203.0.113.99"))
        .unwrap();
    let before: Value = serde_json::from_str(ORIGINAL).unwrap();
    let after = file_json(&store);
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), 4);
    for (old, new) in before.as_array().unwrap().iter().zip(after) {
        assert_eq!(old, new);
    }
    assert_eq!(after[3]["name"], "new-one");
    assert!(after[3].get("ssh").is_none());
}

#[test]
fn missing_mode_is_written_back_as_coolify_and_nothing_else_changes() {
    let (_tmp, store) = store();
    std::fs::write(
        store.path(),
        r#"[{"id":"1","name":"old-1","provider":"vultr","ip":"203.0.113.1","region":"ewr","size":"vc2","createdAt":"2024-01-01T00:00:00.000Z"}]"#,
    )
    .unwrap();
    store
        .update("old-1", |r| r.domain = Some("x.example.com".into()))
        .unwrap();
    let after = file_json(&store);
    assert_eq!(after[0]["mode"], "coolify");
    assert_eq!(after[0]["region"], "ewr");
    assert_eq!(after[0]["domain"], "x.example.com");
}

#[test]
fn duplicates_are_refused_with_the_original_messages() {
    let (_tmp, store) = store();
    store.add(manual("web-1", "203.0.113.10")).unwrap();
    let err = store.add(manual("web-1", "203.0.113.11")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.message(), "Server already exists: name \"web-1\"");
    let err = store.add(manual("web-2", "203.0.113.10")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.message(), "Server already exists: IP 203.0.113.10");
    assert!(err.hint().unwrap().contains("web-1"));
    assert_eq!(store.servers().unwrap().len(), 1);
}

#[test]
fn sentinel_ips_may_repeat() {
    let (_tmp, store) = store();
    for (i, ip) in ["", "pending", "0.0.0.0", "pending", ""].iter().enumerate() {
        store
            .add(ServerRecord::new(
                format!("{}", 100 + i),
                format!("prov-{i}"),
                *ip,
            ))
            .unwrap();
    }
    assert_eq!(store.servers().unwrap().len(), 5);
}

#[test]
fn invalid_records_are_refused_before_touching_the_file() {
    let (_tmp, store) = store();
    for bad in [
        manual("No", "203.0.113.1"),
        manual("web-1", "203.0.113.01"),
        manual("web-1", "web-1"),
        ServerRecord::new("../x", "web-1", "203.0.113.1"),
    ] {
        let err = store.add(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert!(!store.path().exists());
}

#[test]
fn duplicate_provider_ids_are_refused_and_manual_ids_bumped() {
    let (_tmp, store) = store();
    store
        .add(ServerRecord::new("4242", "cloud-1", "203.0.113.1"))
        .unwrap();
    let err = store
        .add(ServerRecord::new("4242", "cloud-2", "203.0.113.2"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let a = store.add(manual("man-1", "203.0.113.3")).unwrap();
    let b = store.add(manual("man-2", "203.0.113.4")).unwrap();
    assert_eq!(a.id, "manual-1742050000000");
    assert_eq!(b.id, "manual-1742050000001");
}

#[test]
fn remove_by_ip_or_name() {
    let (_tmp, store) = store();
    store.add(manual("web-1", "203.0.113.10")).unwrap();
    store.add(manual("web-2", "203.0.113.11")).unwrap();
    assert_eq!(store.remove("203.0.113.11").unwrap().name, "web-2");
    let err = store.remove("web-2").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.hint(), Some("Available servers: web-1"));
    assert_eq!(store.remove("web-1").unwrap().ip, "203.0.113.10");
    assert_eq!(file_json(&store), json!([]));
}

#[test]
fn a_missing_server_in_a_big_fleet_is_counted_not_listed() {
    let (_tmp, store) = store();
    for i in 0..12 {
        let mut record = manual(&format!("web-{i}"), &format!("203.0.113.{}", i + 1));
        record.id = format!("manual-{}", 1_742_050_000_000u64 + i);
        store.add(record).unwrap();
    }
    let err = store.remove("ghost").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.hint(),
        Some("12 servers are known; list them with `kastell server list` (MCP: server_info list)")
    );
    assert_eq!(store.servers().unwrap().len(), 12);
}

#[test]
fn remove_keeps_unknown_provider_and_unreadable_entries() {
    let (_tmp, store) = store();
    let content = ORIGINAL.replacen("[", "[{\"weird\": true},", 1);
    std::fs::write(store.path(), content).unwrap();
    store.remove("web-1").unwrap();
    let after = file_json(&store);
    assert_eq!(after[0], json!({"weird": true}));
    assert_eq!(after.as_array().unwrap().len(), 3);
    // The unreadable entry's name still blocks a duplicate.
    std::fs::write(store.path(), r#"[{"name":"ghost-1"}]"#).unwrap();
    let err = store.add(manual("ghost-1", "203.0.113.1")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

#[test]
fn update_is_checked_and_refusal_writes_nothing() {
    let (_tmp, store) = store();
    store.add(manual("web-1", "203.0.113.10")).unwrap();
    store.add(manual("web-2", "203.0.113.11")).unwrap();
    let before = std::fs::read(store.path()).unwrap();
    let err = store
        .update("web-2", |r| r.name = "web-1".into())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = store
        .update("web-2", |r| r.name = "Bad Name".into())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(std::fs::read(store.path()).unwrap(), before);
    let updated = store
        .update("web-2", |r| r.backup_paths = vec!["/etc/nginx".into()])
        .unwrap();
    assert_eq!(updated.backup_paths, vec!["/etc/nginx".to_owned()]);
    assert_eq!(file_json(&store)[1]["backupPaths"], json!(["/etc/nginx"]));
    assert_eq!(
        store.update("nope-1", |_| {}).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn host_keys_pin_once_and_refuse_silent_changes() {
    let (_tmp, store) = store();
    store.add(manual("web-1", "203.0.113.10")).unwrap();
    let key = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
    let rec = store.pin_host_key("web-1", key).unwrap();
    assert_eq!(rec.host_key(), Some(key));
    assert_eq!(file_json(&store)[0]["ssh"]["hostKey"], key);
    store.pin_host_key("203.0.113.10", key).unwrap();
    let err = store
        .pin_host_key(
            "web-1",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKeyMismatch);
    assert_eq!(store.find("web-1").unwrap().unwrap().host_key(), Some(key));
    for bad in ["", "SHA256:", "MD5:aa:bb", "SHA256:abc def", "SHA256:a\nb"] {
        assert_eq!(
            store.pin_host_key("web-1", bad).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    let rec = store.unpin_host_key("web-1").unwrap();
    assert!(rec.ssh.is_none());
    assert!(file_json(&store)[0].get("ssh").is_none());
}

#[test]
fn a_corrupt_file_is_never_overwritten() {
    let (_tmp, store) = store();
    std::fs::write(store.path(), "[{oops").unwrap();
    let err = store.add(manual("web-1", "203.0.113.10")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert_eq!(std::fs::read(store.path()).unwrap(), b"[{oops");
    assert!(
        !store.dir().join(LOCK_DIR).exists(),
        "lock released on failure"
    );
    assert_eq!(
        store.servers().unwrap_err().kind(),
        ErrorKind::ConfigInvalid
    );
}

#[test]
fn writes_leave_private_modes_and_no_debris() {
    let (_tmp, store) = store();
    store.add(manual("web-1", "203.0.113.10")).unwrap();
    store
        .update("web-1", |r| r.domain = Some("a.example.com".into()))
        .unwrap();
    let names: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![SERVERS_FILE.to_owned()]);
    let file_mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let dir_mode = std::fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600);
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn concurrent_writers_in_one_process_lose_nothing() {
    let (_tmp, store) = store();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let name = format!("t{t}-s{i}");
                    let ip = format!("203.0.113.{}", t * 10 + i + 1);
                    store
                        .add(ServerRecord::new(format!("{}", t * 100 + i), name, ip))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.servers().unwrap().len(), 40);
}

#[test]
fn resolve_and_find_go_through_the_file() {
    let (_tmp, store) = store();
    assert_eq!(store.resolve(None).unwrap_err().kind(), ErrorKind::NotFound);
    store.add(manual("web-1", "203.0.113.10")).unwrap();
    assert_eq!(store.resolve(Some("")).unwrap().name, "web-1");
    assert!(store.find("203.0.113.10").unwrap().is_some());
    assert!(store.find("web-9").unwrap().is_none());
}
