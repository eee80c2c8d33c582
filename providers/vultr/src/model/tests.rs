//! Parsing and normalisation, with the JSON examples of provider-apis.md §3.

use super::*;

const INSTANCE: &str = r#"{"instance": {"id": "14b3e7d6-ffb5-4994-8502-57fcd9db3b33", "label": "web-1", "hostname": "web-1",
  "main_ip": "203.0.113.10", "v6_main_ip": "2001:db8::1", "internal_ip": "",
  "status": "active", "power_status": "running", "server_status": "ok",
  "os": "Ubuntu 24.04 LTS x64", "os_id": 2284, "plan": "vc2-1c-2gb", "region": "ewr",
  "ram": 2048, "disk": 55, "vcpu_count": 1, "date_created": "2026-01-01T00:00:00+00:00",
  "features": [], "tags": []}}"#;

const SNAPSHOT: &str = r#"{"snapshot": {"id": "0a1b2c3d-0000-4000-8000-000000000001", "date_created": "2026-08-01T10:00:00+00:00",
  "description": "kastell:14b3e7d6-ffb5-4994-8502-57fcd9db3b33:nightly", "size": 0, "compressed_size": 0,
  "status": "pending", "os_id": 2284, "app_id": 0}}"#;

fn instance(status: &str, power: &str, server: &str) -> Instance {
    let mut i = serde_json::from_str::<InstanceEnvelope>(INSTANCE)
        .unwrap()
        .instance;
    i.status = Some(status.into());
    i.power_status = Some(power.into());
    i.server_status = Some(server.into());
    i
}

#[test]
fn parses_the_documented_instance() {
    let i = serde_json::from_str::<InstanceEnvelope>(INSTANCE)
        .unwrap()
        .instance;
    let s = to_server(i).unwrap();
    assert_eq!(s.id.as_str(), "14b3e7d6-ffb5-4994-8502-57fcd9db3b33");
    assert_eq!(s.name, "web-1");
    assert_eq!(s.status, ServerStatus::Running);
    assert_eq!(s.raw_status, "active/running/ok");
    assert_eq!(s.public_ipv4, Some(Ipv4Addr::new(203, 0, 113, 10)));
    assert_eq!(s.region.as_deref(), Some("ewr"));
    assert_eq!(s.plan.as_deref(), Some("vc2-1c-2gb"));
    assert_eq!(s.disk_gb, Some(55.0));
}

#[test]
fn tolerates_missing_and_null_fields() {
    let i: InstanceEnvelope =
        serde_json::from_str(r#"{"instance": {"id": "x", "main_ip": null, "extra": 1}}"#).unwrap();
    assert_eq!(public_ipv4(&i.instance), None);
    assert_eq!(server_status(&i.instance), ServerStatus::Unknown);
    assert_eq!(raw_status(&i.instance), "?/?/?");
}

#[test]
fn only_ready_is_running() {
    let cases = [
        (("active", "running", "ok"), ServerStatus::Running),
        (
            ("active", "running", "installingbooting"),
            ServerStatus::Starting,
        ),
        (
            ("active", "stopped", "installingbooting"),
            ServerStatus::Rebooting,
        ),
        (("active", "running", "locked"), ServerStatus::Provisioning),
        (("active", "stopped", "ok"), ServerStatus::Off),
        (("active", "running", "none"), ServerStatus::Provisioning),
        (("pending", "running", "none"), ServerStatus::Provisioning),
        (("suspended", "stopped", "ok"), ServerStatus::Off),
        (("resizing", "running", "ok"), ServerStatus::Migrating),
        (("active", "sleeping", "ok"), ServerStatus::Unknown),
    ];
    for ((status, power, server), want) in cases {
        let i = instance(status, power, server);
        assert_eq!(server_status(&i), want, "{status}/{power}/{server}");
        assert_eq!(is_ready(&i), want == ServerStatus::Running);
    }
}

#[test]
fn main_ip_must_be_a_public_address() {
    let mut i = instance("active", "running", "ok");
    for (ip, want) in [
        ("0.0.0.0", None),
        ("", None),
        ("10.1.2.3", None),
        ("192.168.0.9", None),
        ("not-an-ip", None),
        (" 198.18.0.7 ", Some(Ipv4Addr::new(198, 18, 0, 7))),
    ] {
        i.main_ip = Some(ip.into());
        assert_eq!(public_ipv4(&i), want, "{ip:?}");
    }
}

#[test]
fn cursors_end_on_an_empty_next() {
    let page: InstancePage = serde_json::from_str(
        r#"{"instances": [], "meta": {"total": 240, "links": {"next": "bmV4dF9fMTAw", "prev": ""}}}"#,
    )
    .unwrap();
    assert_eq!(next_cursor(page.meta).as_deref(), Some("bmV4dF9fMTAw"));
    let last: InstancePage =
        serde_json::from_str(r#"{"instances": [], "meta": {"links": {"next": "", "prev": "x"}}}"#)
            .unwrap();
    assert_eq!(next_cursor(last.meta), None);
    let bare: InstancePage = serde_json::from_str(r#"{"instances": []}"#).unwrap();
    assert_eq!(next_cursor(bare.meta), None);
}

#[test]
fn snapshots_are_owned_through_their_description() {
    let server = ServerId::new("14b3e7d6-ffb5-4994-8502-57fcd9db3b33").unwrap();
    let other = ServerId::new("24b3e7d6-ffb5-4994-8502-57fcd9db3b33").unwrap();
    let snap = serde_json::from_str::<SnapshotEnvelope>(SNAPSHOT)
        .unwrap()
        .snapshot;
    assert!(belongs_to(&snap, &server));
    assert!(!belongs_to(&snap, &other));
    assert_eq!(
        description_for(&server, "nightly"),
        snap.description.clone().unwrap()
    );
    let s = to_snapshot(snap, &server).unwrap();
    assert_eq!(s.name, "nightly");
    assert_eq!(s.status, SnapshotStatus::Creating);
    assert_eq!(s.raw_status, "pending");
    assert_eq!(s.size_gb, None, "size 0 means not known yet");
    assert_eq!(s.server_id, Some(server));
}

#[test]
fn snapshot_statuses_and_sizes() {
    assert_eq!(snapshot_status(Some("complete")), SnapshotStatus::Available);
    assert_eq!(snapshot_status(Some("deleted")), SnapshotStatus::Deleting);
    assert_eq!(snapshot_status(None), SnapshotStatus::Unknown);
    assert_eq!(bytes_to_gb(Some(0)), None);
    assert_eq!(bytes_to_gb(Some(5 * 1024 * 1024 * 1024)), Some(5.0));
}

#[test]
fn uuids() {
    assert!(is_uuid("14b3e7d6-ffb5-4994-8502-57fcd9db3b33"));
    assert!(is_uuid("14B3E7D6-FFB5-4994-8502-57FCD9DB3B33"));
    for bad in [
        "12345",
        "",
        "14b3e7d6-ffb5-4994-8502-57fcd9db3b3",
        "14b3e7d6ffb5-4994-8502-57fcd9db3b33-",
        "g4b3e7d6-ffb5-4994-8502-57fcd9db3b33",
        "5f3d2a1b9c7e0",
    ] {
        assert!(!is_uuid(bad), "{bad:?}");
    }
}

#[test]
fn accounts_parse_with_or_without_acls() {
    let a: AccountEnvelope = serde_json::from_str(
        r#"{"account": {"name": "Ops", "email": "ops@example.com", "acls": ["subscriptions", "billing"],
            "balance": -5.0, "pending_charges": 1.2}}"#,
    )
    .unwrap();
    assert!(a.account.acls.iter().any(|x| x == "subscriptions"));
    let bare: AccountEnvelope = serde_json::from_str(r#"{"account": {}}"#).unwrap();
    assert!(bare.account.acls.is_empty() && bare.account.name.is_none());
}

#[test]
fn writability_follows_vultrs_documented_acls() {
    let acls = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // A restricted key that may manage and deploy servers can write; Vultr
    // has no `manage_servers` ACL, so a list naming only that cannot.
    assert_eq!(
        can_write(&acls(&["subscriptions", "provisioning"])),
        Some(true)
    );
    assert_eq!(
        can_write(&acls(&[
            "manage_users",
            "subscriptions_view",
            "subscriptions",
            "billing"
        ])),
        Some(true)
    );
    assert_eq!(
        can_write(&acls(&["subscriptions_view", "billing"])),
        Some(false)
    );
    assert_eq!(can_write(&acls(&["manage_servers"])), Some(false));
    assert_eq!(can_write(&[]), None);
}
