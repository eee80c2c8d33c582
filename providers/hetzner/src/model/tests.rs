//! Parsing and normalisation against the documented JSON examples.

use super::*;

const SERVER: &str = r#"{"server": {
  "id": 42, "name": "web-1", "status": "running", "locked": false,
  "created": "2016-01-30T23:55:00+00:00",
  "public_net": {"ipv4": {"id": 11, "ip": "1.2.3.4", "blocked": false, "dns_ptr": "static.4.3.2.1.example"},
                 "ipv6": {"id": 12, "ip": "2001:db8::/64", "blocked": false, "dns_ptr": []},
                 "floating_ips": [], "firewalls": []},
  "private_net": [{"network": 4711, "ip": "10.0.0.2", "alias_ips": []}],
  "server_type": {"id": 1, "name": "cx23", "cores": 2, "memory": 4.0, "disk": 40},
  "primary_disk_size": 40, "image": {"id": 4711, "type": "system", "name": "ubuntu-24.04"},
  "location": {"name": "fsn1"}, "labels": {}, "protection": {"delete": false, "rebuild": false}
}}"#;

#[test]
fn server_normalises_with_its_public_ipv4() {
    let env: ServerEnvelope = serde_json::from_str(SERVER).unwrap();
    let server = env.server.into_server().unwrap();
    assert_eq!(server.id.as_str(), "42");
    assert_eq!(server.name, "web-1");
    assert_eq!(server.status, ServerStatus::Running);
    assert_eq!(server.raw_status, "running");
    assert_eq!(server.public_ipv4, Some(Ipv4Addr::new(1, 2, 3, 4)));
    assert_eq!(server.region.as_deref(), Some("fsn1"));
    assert_eq!(server.plan.as_deref(), Some("cx23"));
    assert_eq!(server.disk_gb, Some(40.0));
    assert_eq!(
        server.created_at.as_deref(),
        Some("2016-01-30T23:55:00+00:00")
    );
}

#[test]
fn ipv6_only_and_sparse_servers_parse() {
    let json = r#"{"server": {"id": 7, "name": null, "status": "initializing",
        "public_net": {"ipv4": null, "ipv6": {"ip": "2001:db8::/64"}},
        "server_type": null, "primary_disk_size": 80, "location": null, "extra": [1, 2]}}"#;
    let server = serde_json::from_str::<ServerEnvelope>(json)
        .unwrap()
        .server
        .into_server()
        .unwrap();
    assert_eq!(server.public_ipv4, None);
    assert_eq!(server.status, ServerStatus::Provisioning);
    assert_eq!(server.disk_gb, Some(80.0));
    assert_eq!(server.name, "");
    let bare: ServerEnvelope = serde_json::from_str(r#"{"server": {"id": 8}}"#).unwrap();
    let bare = bare.server.into_server().unwrap();
    assert_eq!(
        (bare.status, bare.raw_status.as_str()),
        (ServerStatus::Unknown, "unknown")
    );
}

#[test]
fn every_documented_status_has_a_meaning() {
    let cases = [
        ("initializing", ServerStatus::Provisioning),
        ("starting", ServerStatus::Starting),
        ("running", ServerStatus::Running),
        ("stopping", ServerStatus::Stopping),
        ("off", ServerStatus::Off),
        ("deleting", ServerStatus::Deleting),
        ("migrating", ServerStatus::Migrating),
        ("rebuilding", ServerStatus::Provisioning),
        ("unknown", ServerStatus::Unknown),
        ("teleporting", ServerStatus::Unknown),
    ];
    for (raw, status) in cases {
        assert_eq!(server_status(raw), status, "{raw}");
    }
}

#[test]
fn pagination_is_followed_until_next_page_is_null() {
    let json = r#"{"servers": [], "meta": {"pagination": {"page": 2, "per_page": 25,
        "previous_page": 1, "next_page": 3, "last_page": 4, "total_entries": 100}}}"#;
    let (items, next) = serde_json::from_str::<ServerList>(json)
        .unwrap()
        .into_page();
    assert!(items.is_empty());
    assert_eq!(next, Some(3));
    let last = r#"{"servers": [], "meta": {"pagination": {"page": 4, "next_page": null,
        "last_page": null, "total_entries": null}}}"#;
    assert_eq!(
        serde_json::from_str::<ServerList>(last)
            .unwrap()
            .into_page()
            .1,
        None
    );
    assert_eq!(
        serde_json::from_str::<ServerList>("{}")
            .unwrap()
            .into_page()
            .1,
        None
    );
}

#[test]
fn primary_ips_name_their_server() {
    let json = r#"{"primary_ips": [
        {"id": 1, "ip": "1.2.3.4", "type": "ipv4", "assignee_id": 42, "assignee_type": "server"},
        {"id": 2, "ip": "5.6.7.8", "type": "ipv4", "assignee_id": null, "assignee_type": "server"}
      ], "meta": {"pagination": {"next_page": null}}}"#;
    let (ips, _) = serde_json::from_str::<PrimaryIpList>(json)
        .unwrap()
        .into_page();
    assert_eq!(ips[0].server_holding(Ipv4Addr::new(1, 2, 3, 4)), Some(42));
    assert_eq!(ips[0].server_holding(Ipv4Addr::new(5, 6, 7, 8)), None);
    assert_eq!(ips[1].server_holding(Ipv4Addr::new(5, 6, 7, 8)), None);
}

const CREATE_IMAGE: &str = r#"{"image": {"id": 4711, "type": "snapshot", "status": "creating", "name": null,
           "description": "kastell-web-1-2026-08-01", "image_size": null, "disk_size": 40,
           "created": "2016-01-30T23:50:00+00:00", "created_from": {"id": 42, "name": "web-1"},
           "bound_to": null, "protection": {"delete": false}, "labels": {"managed-by": "tool"}},
 "action": {"id": 14, "command": "create_image", "status": "running", "progress": 0,
            "started": "2016-01-30T23:50:00+00:00", "finished": null,
            "resources": [{"id": 42, "type": "server"}], "error": null}}"#;

#[test]
fn created_images_are_snapshots_of_their_server() {
    let answer: CreateImageAnswer = serde_json::from_str(CREATE_IMAGE).unwrap();
    assert_eq!(answer.action.id, 14);
    assert!(answer.image.is_snapshot_of(42));
    assert!(!answer.image.is_snapshot_of(43));
    let snap = answer.image.into_snapshot().unwrap();
    assert_eq!(snap.id.as_str(), "4711");
    assert_eq!(snap.server_id.unwrap().as_str(), "42");
    assert_eq!(snap.name, "kastell-web-1-2026-08-01");
    assert_eq!(snap.status, SnapshotStatus::Creating);
    assert_eq!(snap.size_gb, None);
    assert_eq!(
        snap.managed,
        Some(false),
        "another tool's label is not kastell's"
    );
    let ours = CREATE_IMAGE.replace(r#""managed-by": "tool""#, r#""managed-by": "kastell""#);
    let ours: CreateImageAnswer = serde_json::from_str(&ours).unwrap();
    assert_eq!(ours.image.into_snapshot().unwrap().managed, Some(true));
}

#[test]
fn image_statuses_and_sizes() {
    let json = r#"{"image": {"id": 5, "type": "snapshot", "status": "available",
        "description": "x", "image_size": 2.37, "created_from": {"id": 42}}}"#;
    let snap = serde_json::from_str::<ImageEnvelope>(json)
        .unwrap()
        .image
        .into_snapshot()
        .unwrap();
    assert_eq!(
        (snap.status, snap.size_gb),
        (SnapshotStatus::Available, Some(2.37))
    );
    assert_eq!(snapshot_status("unavailable"), SnapshotStatus::Failed);
    assert_eq!(snapshot_status("new-word"), SnapshotStatus::Unknown);
    let system =
        r#"{"image": {"id": 1, "type": "system", "status": "available", "created_from": null}}"#;
    let system = serde_json::from_str::<ImageEnvelope>(system).unwrap().image;
    assert!(!system.is_snapshot_of(42));
}

#[test]
fn actions_report_state_progress_and_errors() {
    let running = r#"{"action": {"id": 13, "command": "reboot_server", "status": "running", "progress": 30,
            "started": "2016-01-30T23:50:00+00:00", "finished": null,
            "resources": [{"id": 42, "type": "server"}], "error": null}}"#;
    let action = serde_json::from_str::<ActionEnvelope>(running)
        .unwrap()
        .action;
    let status = action.status(None).unwrap();
    assert_eq!(status.state, ActionState::Running);
    assert_eq!(status.progress, Some(30));
    assert_eq!(status.resource, None);

    let failed = r#"{"action": {"id": 13, "status": "error", "progress": 100,
        "error": {"code": "action_failed", "message": "server is locked"}}}"#;
    let status = serde_json::from_str::<ActionEnvelope>(failed)
        .unwrap()
        .action
        .status(Some("9".into()))
        .unwrap();
    assert_eq!(status.state, ActionState::Failed);
    assert_eq!(
        status.message.as_deref(),
        Some("action_failed: server is locked")
    );
    assert_eq!(status.resource.as_deref(), Some("9"));

    let image = r#"{"action": {"id": 14, "status": "success", "progress": 100,
        "resources": [{"id": 42, "type": "server"}, {"id": 4711, "type": "image"}]}}"#;
    let status = serde_json::from_str::<ActionEnvelope>(image)
        .unwrap()
        .action
        .status(None)
        .unwrap();
    assert_eq!(status.state, ActionState::Succeeded);
    assert_eq!(status.resource.as_deref(), Some("4711"));

    let odd = r#"{"action": {"id": 15, "status": "paused"}}"#;
    let odd = serde_json::from_str::<ActionEnvelope>(odd).unwrap().action;
    assert!(odd.status(None).is_err());
}

#[test]
fn pricing_reads_the_gross_image_price() {
    let json = r#"{"pricing": {"currency": "EUR", "vat_rate": "19.00",
        "image": {"price_per_gb_month": {"net": "0.0100000000", "gross": "0.0119000000000000"}},
        "server_types": []}}"#;
    let pricing = serde_json::from_str::<PricingEnvelope>(json)
        .unwrap()
        .pricing;
    assert!((pricing.gross_per_gb_month().unwrap() - 0.0119).abs() < 1e-12);
    assert_eq!(pricing.currency_symbol(), "€");
    let bad = r#"{"pricing": {"currency": "CHF", "image": {"price_per_gb_month": {"net": "x", "gross": "n/a"}}}}"#;
    let bad = serde_json::from_str::<PricingEnvelope>(bad)
        .unwrap()
        .pricing;
    assert!(bad.gross_per_gb_month().is_err());
    assert_eq!(bad.currency_symbol(), "CHF");
}
