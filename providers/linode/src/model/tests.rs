//! Parsing and normalisation of the documented Linode JSON.

use super::*;

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("fixture parses")
}

const INSTANCE: &str = r#"{"id": 82373289, "label": "web-1", "status": "running", "type": "g6-nanode-1", "region": "us-sea",
 "ipv4": ["192.168.130.5", "192.0.2.10"], "ipv6": "2001:db8::1/128", "image": "linode/ubuntu24.04",
 "specs": {"disk": 25600, "memory": 1024, "vcpus": 1, "transfer": 1000, "gpus": 0},
 "backups": {"enabled": false, "available": false}, "created": "2018-01-02T03:04:05",
 "updated": "2018-01-02T03:04:05", "tags": []}"#;

const IPS: &str = r#"{"ipv4": {
  "public": [{"address": "192.0.2.10", "gateway": "192.0.2.1", "prefix": 24, "type": "ipv4", "public": true, "linode_id": 82373289, "region": "us-sea", "rdns": null}],
  "private": [{"address": "192.168.130.5", "gateway": null, "prefix": 17, "type": "ipv4", "public": false, "linode_id": 82373289}],
  "shared": [], "reserved": [], "vpc": []},
 "ipv6": {"slaac": {"address": "2001:db8::1"}, "link_local": null, "global": []}}"#;

#[test]
fn instance_normalises_with_the_public_address_from_ips() {
    let instance: Instance = parse(INSTANCE);
    let ips: InstanceIps = parse(IPS);
    let ip = public_ipv4(&ips);
    assert_eq!(ip, Some(Ipv4Addr::new(192, 0, 2, 10)));
    let server = to_server(&instance, ip).expect("server");
    assert_eq!(server.id.as_str(), "82373289");
    assert_eq!(server.name, "web-1");
    assert_eq!(server.status, ServerStatus::Running);
    assert_eq!(server.raw_status, "running");
    assert_eq!(server.plan.as_deref(), Some("g6-nanode-1"));
    assert_eq!(server.region.as_deref(), Some("us-sea"));
    assert_eq!(server.disk_gb, Some(25.0));
    assert_eq!(server.created_at.as_deref(), Some("2018-01-02T03:04:05"));
}

#[test]
fn sparse_and_null_fields_are_tolerated() {
    let instance: Instance =
        parse(r#"{"id": 1, "label": null, "status": "provisioning", "specs": null}"#);
    let server = to_server(&instance, None).expect("server");
    assert_eq!(server.status, ServerStatus::Provisioning);
    assert_eq!(server.disk_gb, None);
    let ips: InstanceIps = parse(r#"{"ipv4": {"public": [], "private": []}}"#);
    assert_eq!(public_ipv4(&ips), None);
    let ips: InstanceIps = parse(r#"{"ipv4": null}"#);
    assert_eq!(public_ipv4(&ips), None);
}

#[test]
fn every_documented_status_has_a_meaning() {
    let cases = [
        ("running", ServerStatus::Running),
        ("offline", ServerStatus::Off),
        ("booting", ServerStatus::Starting),
        ("rebooting", ServerStatus::Rebooting),
        ("shutting_down", ServerStatus::Stopping),
        ("provisioning", ServerStatus::Provisioning),
        ("deleting", ServerStatus::Deleting),
        ("migrating", ServerStatus::Migrating),
        ("rebuilding", ServerStatus::Provisioning),
        ("cloning", ServerStatus::Provisioning),
        ("restoring", ServerStatus::Provisioning),
        ("resizing", ServerStatus::Migrating),
        ("stopped", ServerStatus::Off),
        ("busy", ServerStatus::Provisioning),
        ("billing_suspension", ServerStatus::Off),
    ];
    for (raw, status) in cases {
        assert_eq!(server_status(raw), status, "{raw}");
        assert_ne!(status, ServerStatus::Unknown, "{raw} is documented");
    }
    assert_eq!(server_status("something-new"), ServerStatus::Unknown);
}

#[test]
fn lookups_accept_only_public_ipv4() {
    let public: IpAddress =
        parse(r#"{"address": "192.0.2.10", "linode_id": 123, "public": true, "type": "ipv4"}"#);
    assert_eq!(public.public_ipv4(), Some(Ipv4Addr::new(192, 0, 2, 10)));
    let private: IpAddress =
        parse(r#"{"address": "192.168.130.5", "linode_id": 123, "public": false, "type": "ipv4"}"#);
    assert_eq!(private.public_ipv4(), None);
    let v6: IpAddress =
        parse(r#"{"address": "2001:db8::1", "linode_id": 123, "public": true, "type": "ipv6"}"#);
    assert_eq!(v6.public_ipv4(), None);
}

#[test]
fn the_image_disk_is_ext4_never_swap() {
    let page: Page<Disk> = parse(
        r#"{"data": [
            {"id": 2, "label": "512 MB Swap Image", "status": "ready", "size": 51200, "filesystem": "swap"},
            {"id": 183299550, "label": "Ubuntu Disk", "status": "ready", "size": 25088, "filesystem": "ext4"}
        ], "page": 1, "pages": 1, "results": 2}"#,
    );
    assert_eq!(pick_disk(&page.data).map(|d| d.id), Some(183299550));
    let raw_only: Vec<Disk> = parse(
        r#"[{"id": 1, "size": 10, "filesystem": "swap"}, {"id": 3, "size": 5, "filesystem": "raw"}]"#,
    );
    assert_eq!(pick_disk(&raw_only).map(|d| d.id), Some(3));
    let swap_only: Vec<Disk> = parse(r#"[{"id": 1, "size": 10, "filesystem": "swap"}]"#);
    assert!(pick_disk(&swap_only).is_none());
}

#[test]
fn images_become_snapshots_of_their_marked_server() {
    let image: Image = parse(
        r#"{"id": "private/38637317", "label": "kastell-82373289-nightly", "description": "kastell:82373289",
            "type": "manual", "status": "available", "size": 25088, "total_size": 25088, "is_public": false,
            "created_by": "alice", "created": "2018-01-02T03:04:05", "regions": [], "capabilities": ["cloud-init"]}"#,
    );
    let owner = ServerId::new("82373289").expect("id");
    let other = ServerId::new("82373290").expect("id");
    assert!(image.belongs_to(&owner));
    assert!(!image.belongs_to(&other));
    let snap = to_snapshot(&image, &owner).expect("snapshot");
    assert_eq!(snap.id.as_str(), "private/38637317");
    assert_eq!(snap.status, SnapshotStatus::Available);
    assert_eq!(snap.size_gb, Some(24.5));
    assert_eq!(snap.server_id, Some(owner.clone()));
    assert_eq!(snap.managed, None, "no tags field: the label decides");
    for (tags, managed) in [(r#"["kastell-managed"]"#, true), (r#"["nightly"]"#, false)] {
        let tagged: Image = parse(&format!(
            r#"{{"id": "private/1", "label": "kastell-82373289-x", "description": "kastell:82373289",
                "status": "available", "tags": {tags}}}"#
        ));
        let snap = to_snapshot(&tagged, &owner).expect("snapshot");
        assert_eq!(snap.managed, Some(managed), "{tags}");
    }

    let public: Image = parse(
        r#"{"id": "linode/ubuntu24.04", "label": "kastell-82373289-x", "is_public": true, "status": "available"}"#,
    );
    assert!(!public.belongs_to(&owner));
    let creating: Image = parse(r#"{"id": "private/1", "status": "creating", "size": 0}"#);
    assert_eq!(image_action_status(&creating).state, ActionState::Running);
    assert_eq!(
        image_action_status(&image).resource.as_deref(),
        Some("private/38637317")
    );
    assert_eq!(image_action_status(&image).state, ActionState::Succeeded);
    assert_eq!(snapshot_status("pending_upload"), SnapshotStatus::Creating);
}

#[test]
fn events_report_progress_and_failure() {
    let started: Event = parse(
        r#"{"id": 603804661, "action": "linode_reboot", "status": "started", "percent_complete": 40,
            "time_remaining": null, "rate": null, "duration": 16.3, "created": "2018-01-02T03:04:05",
            "entity": {"id": 123, "type": "linode", "label": "web-1", "url": "/v4/linode/instances/123"},
            "secondary_entity": null, "message": "", "username": "alice", "seen": false, "read": false}"#,
    );
    let status = event_status(&started);
    assert_eq!(status.state, ActionState::Running);
    assert_eq!(status.progress, Some(40));
    let finished: Event = parse(r#"{"id": 1, "status": "finished", "percent_complete": 100}"#);
    assert_eq!(event_status(&finished).state, ActionState::Succeeded);
    let scheduled: Event = parse(r#"{"id": 1, "status": "scheduled", "percent_complete": null}"#);
    assert_eq!(event_status(&scheduled).state, ActionState::Running);
    let failed: Event = parse(r#"{"id": 7, "status": "failed", "message": "host error"}"#);
    let status = event_status(&failed);
    assert_eq!(status.state, ActionState::Failed);
    assert_eq!(status.message.as_deref(), Some("host error"));
    let canceled: Event = parse(r#"{"id": 7, "status": "canceled", "message": ""}"#);
    assert!(
        event_status(&canceled)
            .message
            .unwrap_or_default()
            .contains("canceled")
    );
}

#[test]
fn pages_parse_with_defaults() {
    let page: Page<Instance> = parse(r#"{"data": [], "page": 2, "pages": 3, "results": 130}"#);
    assert_eq!((page.page, page.pages), (Some(2), Some(3)));
    let page: Page<Instance> = parse(r#"{}"#);
    assert!(page.data.is_empty());
    let profile: Profile =
        parse(r#"{"uid": 1, "username": "alice", "email": "a@example.com", "restricted": false}"#);
    assert_eq!(profile.username.as_deref(), Some("alice"));
}
