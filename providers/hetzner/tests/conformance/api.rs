//! Hetzner-specific behaviour against the simulator: the primary-IP lookup
//! and its fallback, snapshots over several pages, protection, locks, hard
//! reboots, cost estimates and ids that are not Hetzner's.

use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{RebootMode, ServerId, ServerStatus, SnapshotId};
use kastell_core::{
    CloudProvider, CloudProviderExt, ErrorKind, PollSchedule, ProviderConfig, Secret,
};
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{Fault, FaultRule, SimOptions, Simulator, public_ip};
use kastell_testkit::sim_cloud::test_retry_policy;

const WAIT: Duration = Duration::from_secs(30);

async fn setup() -> (HetznerSim, Arc<dyn CloudProvider>) {
    let sim = HetznerSim::start(SimOptions::default())
        .await
        .unwrap_or_else(|e| panic!("starting the simulator: {e}"));
    let provider = provider(&sim, &sim.context().tokens.read_write, true);
    (sim, provider)
}

fn provider(sim: &HetznerSim, token: &str, retries: bool) -> Arc<dyn CloudProvider> {
    kastell_hetzner::build(ProviderConfig {
        token: Secret::new(token),
        endpoint: Some(sim.endpoint()),
        timeout: Some(Duration::from_secs(2)),
        retry: Some(if retries {
            test_retry_policy()
        } else {
            kastell_core::RetryPolicy::none()
        }),
        poll: Some(PollSchedule::new(
            Duration::from_millis(5),
            Duration::from_millis(40),
        )),
        options: Default::default(),
    })
    .unwrap_or_else(|e| panic!("building the provider: {e}"))
}

fn server(sim: &HetznerSim, index: usize) -> ServerId {
    ServerId::new(sim.server_ids()[index].clone()).unwrap_or_else(|e| panic!("server id: {e}"))
}

#[tokio::test]
async fn lists_use_the_documented_page_size_and_the_ip_lookup_is_one_call() {
    let (sim, p) = setup().await;
    let log = &sim.context().recorder;
    assert_eq!(p.list_servers().await.unwrap().len(), 130);
    let pages = log.matching("GET", "/v1/servers");
    assert_eq!(pages.len(), 3, "130 servers are three pages of 50");
    assert!(pages.iter().all(|r| r.query.contains("per_page=50")));

    log.clear();
    let found = p.find_server_by_ip(public_ip(129)).await.unwrap().unwrap();
    assert_eq!(found.id, server(&sim, 129));
    assert_eq!(log.count("GET", "/v1/primary_ips"), 1);
    assert_eq!(log.count("GET", "/v1/servers"), 1, "only the server itself");
    // An unassigned primary IP names no server.
    let spare = "198.19.255.254".parse().unwrap();
    assert!(p.find_server_by_ip(spare).await.unwrap().is_none());
}

#[tokio::test]
async fn find_by_ip_pages_servers_when_the_lookup_is_unavailable() {
    let (sim, p) = setup().await;
    let rule = FaultRule::new("GET", "/v1/primary_ips", Fault::Status(404)).always();
    sim.context().faults.add(rule);
    let found = p.find_server_by_ip(public_ip(129)).await.unwrap().unwrap();
    assert_eq!(found.id, server(&sim, 129));
    assert_eq!(sim.context().recorder.count("GET", "/v1/servers"), 3);
    let nowhere = "192.0.2.254".parse().unwrap();
    assert!(p.find_server_by_ip(nowhere).await.unwrap().is_none());
}

#[tokio::test]
async fn snapshots_of_a_server_are_found_on_every_page() {
    let (sim, p) = setup().await;
    let a = server(&sim, 0);
    let seeded = p.list_snapshots(&a).await.unwrap();
    assert_eq!(seeded.len(), 1, "web-0's old snapshot is on the last page");
    let pages = sim.context().recorder.matching("GET", "/v1/images");
    assert_eq!(pages.len(), 2);
    assert!(pages[0].query.contains("type=snapshot"));
    assert!(pages[0].query.contains("sort=created%3Adesc"));

    let snap = p.snapshot_and_wait(&a, "kastell-test", WAIT).await.unwrap();
    assert_eq!(snap.name, "kastell-test");
    assert!(snap.size_gb.is_some_and(|gb| gb > 0.0));
    let listed = p.list_snapshots(&a).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, snap.id, "newest first");
    assert!(listed.iter().all(|s| s.server_id.as_ref() == Some(&a)));
}

#[tokio::test]
async fn other_projects_and_protected_snapshots_are_refused() {
    let (sim, p) = setup().await;
    let foreign = ServerId::new(sim.foreign_server_id()).unwrap();
    let err = p.get_server(&foreign).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.hint().is_some());
    let theirs = SnapshotId::new(sim.foreign_snapshot_id()).unwrap();
    let err = p
        .delete_snapshot(&server(&sim, 0), &theirs)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let c = server(&sim, 2);
    let protected = p.list_snapshots(&c).await.unwrap().remove(0);
    let err = p.delete_snapshot(&c, &protected.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(!err.is_retryable());
    assert!(err.hint().unwrap().contains("protection"));
}

#[tokio::test]
async fn a_locked_server_refuses_writes_but_answers_reads() {
    let (sim, p) = setup().await;
    let once = provider(&sim, &sim.context().tokens.read_write, false);
    let b = server(&sim, 1);
    let action = p.create_snapshot(&b, "kastell-lock").await.unwrap();
    let image = SnapshotId::new(action.resource.clone().unwrap()).unwrap();
    let err = once.reboot(&b, RebootMode::Soft).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.is_retryable() && !err.may_have_taken_effect());
    let err = once.restore_snapshot(&b, &image).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState, "still creating: {err}");
    assert_eq!(
        p.get_server(&b).await.unwrap().status,
        ServerStatus::Running
    );
    let status = p.wait_for_action(&action, WAIT).await.unwrap();
    assert_eq!(status.resource, action.resource);
}

#[tokio::test]
async fn hard_reboots_reset_the_server() {
    let (sim, p) = setup().await;
    let a = server(&sim, 0);
    let before = sim.boots(a.as_str());
    p.reboot_and_wait(&a, RebootMode::Hard, WAIT).await.unwrap();
    assert_eq!(sim.boots(a.as_str()), before + 1);
    assert_eq!(sim.context().recorder.count("POST", "/actions/reset"), 1);
    assert_eq!(sim.context().recorder.count("POST", "/actions/reboot"), 0);
}

#[tokio::test]
async fn cost_comes_from_the_pricing_endpoint() {
    let (sim, p) = setup().await;
    let cost = p.snapshot_cost_estimate(&server(&sim, 0)).await.unwrap();
    assert_eq!(cost.currency, "€");
    assert_eq!(cost.size_gb, 40.0);
    assert!((cost.monthly - 40.0 * 0.0119).abs() < 1e-9);
    assert_eq!(cost.to_string(), "€0.48/mo");
    assert!(cost.basis.contains("pricing"));
}

#[tokio::test]
async fn ids_that_are_not_hetzner_ids_are_refused_before_any_request() {
    let (sim, p) = setup().await;
    let manual = ServerId::new("manual-1742050000000").unwrap();
    let err = p.get_server(&manual).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = p.reboot(&manual, RebootMode::Soft).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let odd = SnapshotId::new("private/12").unwrap();
    let err = p.delete_snapshot(&server(&sim, 0), &odd).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(sim.context().recorder.all().is_empty());
}

#[tokio::test]
async fn a_read_only_token_is_named_in_the_hint() {
    let (sim, _) = setup().await;
    let ro = provider(&sim, &sim.context().tokens.read_only, false);
    assert_eq!(ro.validate_token().await.unwrap().can_write, None);
    let err = ro
        .create_snapshot(&server(&sim, 0), "kastell-ro")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.hint().unwrap().contains("read-only"));
}

#[tokio::test]
async fn an_action_failing_after_its_201_is_an_error() {
    let (sim, p) = setup().await;
    let a = server(&sim, 0);
    let before = sim.boots(a.as_str());
    sim.fail_next_action();
    let err = p
        .reboot_and_wait(&a, RebootMode::Soft, WAIT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.message().contains("action_failed"), "{err}");
    assert_eq!(sim.boots(a.as_str()), before, "a failed reboot is no boot");

    sim.fail_next_action();
    let err = p
        .snapshot_and_wait(&a, "kastell-doomed", WAIT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    let doomed = p.list_snapshots(&a).await.unwrap();
    let doomed = doomed.iter().find(|s| s.name == "kastell-doomed").unwrap();
    assert_eq!(doomed.raw_status, "unavailable");
}
