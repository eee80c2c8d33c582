//! Fault injection, cloud side: every provider simulator answers with 5xx,
//! gateway pages, hangs, answers slower than the client's timeout,
//! malformed and non-JSON bodies, 429 storms and busy/locked answers, and
//! loses the answers of non-idempotent calls. Each fault goes through the
//! operations layer the CLI and MCP share (snapshot list/create/restore,
//! restart with its boot-id proof), and the test checks what the user sees
//! (error, hint, kind) and the invariants: transient faults are ridden out,
//! persistent ones end in a clear error, and reboot, snapshot creation and
//! restore reach the provider at most once when their outcome is unknown
//! (the simulator's request log), with no token in anything shown.
//!
//! The provider is the registry's, built with a 1 s request timeout and a
//! fast retry policy (production: 30 s and backoff from 500 ms) so a hang
//! costs a second here; the server's SSH side is a `MemoryTransport` whose
//! boot id is the simulator's boot counter, so restarts are proven exactly
//! as on a real host.
//!
//! The provider-level trials (kinds and retryability of each fault, the
//! 429 storm's `Retry-After` spacing, busy retries, at-most-once on the
//! raw calls) are `kastell_testkit::cloud`'s conformance trials, run for
//! every provider in `providers/*/tests/conformance.rs`; this file adds
//! what the user sees through the operations.
#![cfg(all(
    feature = "sandbox",
    feature = "hetzner",
    feature = "digitalocean",
    feature = "vultr",
    feature = "linode"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::faults::common as faults_common;

use std::sync::Arc;
use std::time::Duration;

use faults_common::{Tally, assert_at_most_once, assert_no_secret, assert_user_sees};
use kastell::ops::{self, Context, OpError, Timing};
use kastell::{Env, FleetStore, ServerRecord, Surface};
use kastell_core::memory::{MemoryPlatform, MemoryTransport, Reply};
use kastell_core::types::ServerId;
use kastell_core::{PollSchedule, ProviderConfig, Registry, RetryPolicy, Secret, Transport};
use kastell_sim::{Fault, FaultRule, SimOptions, Simulator, public_ip};

/// The per-request timeout of the providers under test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Retries as production does them, faster: three attempts, 20–200 ms
/// apart (never sooner than a `Retry-After`), within 20 s.
fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        deadline: Duration::from_secs(20),
        ..kastell_testkit::sim_cloud::test_retry_policy()
    }
}

/// Where a provider's requests go, for the server under test.
struct Routes {
    /// A path fragment every API request contains (its version prefix).
    api: &'static str,
    /// The reboot request.
    reboot: String,
    /// The snapshot creation request.
    create: String,
    /// The restore (rebuild) request.
    restore: String,
}

/// One provider's simulator, the store server `<id>-web` on its first
/// server, and an operations context over both.
struct Cloud {
    sim: Arc<dyn Simulator>,
    routes: Routes,
    server: ServerId,
    name: String,
    ctx: Context,
    _dir: tempfile::TempDir,
}

impl Cloud {
    async fn start(provider: &'static str) -> Self {
        let simulator = kastell_sim::simulators()
            .unwrap()
            .into_iter()
            .find(|e| e.provider_id == provider)
            .unwrap_or_else(|| panic!("no simulator for {provider}"));
        let options = SimOptions {
            servers: 3,
            scale: 200.0,
        };
        let sim: Arc<dyn Simulator> = Arc::from(
            (simulator.start)(options)
                .await
                .unwrap_or_else(|e| panic!("starting the {provider} simulator: {e}")),
        );
        let server = ServerId::new(sim.server_ids()[0].clone()).unwrap();
        let a = server.as_str();
        let routes = match provider {
            "hetzner" => Routes {
                api: "/v1/",
                reboot: format!("/servers/{a}/actions/reboot"),
                create: format!("/servers/{a}/actions/create_image"),
                restore: format!("/servers/{a}/actions/rebuild"),
            },
            // Reboot, snapshot and rebuild share one path; each scenario
            // arms its fault right before the one call that sends it.
            "digitalocean" => Routes {
                api: "/v2/",
                reboot: format!("/v2/droplets/{a}/actions"),
                create: format!("/v2/droplets/{a}/actions"),
                restore: format!("/v2/droplets/{a}/actions"),
            },
            "vultr" => Routes {
                api: "/v2/",
                reboot: format!("/v2/instances/{a}/reboot"),
                create: "/v2/snapshots".to_owned(),
                restore: format!("/v2/instances/{a}/restore"),
            },
            _ => Routes {
                api: "/v4/",
                reboot: format!("/v4/linode/instances/{a}/reboot"),
                create: "/v4/images".to_owned(),
                restore: format!("/v4/linode/instances/{a}/rebuild"),
            },
        };
        let dir = tempfile::tempdir().unwrap();
        let store = FleetStore::open(dir.path()).unwrap();
        let name = format!("{provider}-web");
        let mut record = ServerRecord::new(server.to_string(), &name, public_ip(0).to_string());
        record.provider = Some(provider.to_owned());
        store.add(record).unwrap();
        let entry = Registry::global().provider(provider).unwrap();
        let token = sim.read_write_token();
        let env = Env::from_pairs([
            (entry.token_env, token.as_str()),
            // The simulators' addresses are in 198.18/15.
            ("KASTELL_ALLOW_PRIVATE_IPS", "true"),
        ]);

        let (endpoint, build) = (sim.endpoint(), entry.build);
        let providers: ops::ProviderFactory = Arc::new(move |_record| {
            build(ProviderConfig {
                token: Secret::new(token.clone()),
                endpoint: Some(endpoint.clone()),
                timeout: Some(REQUEST_TIMEOUT),
                retry: Some(retry_policy()),
                poll: Some(PollSchedule::new(
                    Duration::from_millis(5),
                    Duration::from_millis(40),
                )),
                options: Default::default(),
            })
        });
        // The host: its boot id is the simulator's boot counter.
        let transport = Arc::new(MemoryTransport::new());
        let (booted, id) = (sim.clone(), server.clone());
        transport.on_fn("cat /proc/sys/kernel/random/boot_id", move |_, _| {
            Reply::ok(format!("boot-{}\n", booted.boots(id.as_str())))
        });
        let transports: ops::TransportFactory = {
            let transport = transport.clone();
            Arc::new(move |_| transport.clone() as Arc<dyn Transport>)
        };
        let platform = Arc::new(MemoryPlatform::new(transport.clone()));
        let platforms: ops::PlatformFactory =
            Arc::new(move |_, _| Ok(platform.clone() as Arc<dyn kastell_core::Platform>));
        let ctx = Context::new(env, store, Surface::Cli)
            .with_timing(Timing::fast())
            .with_provider_factory(providers)
            .with_transport_factory(transports)
            .with_platform_factory(platforms);
        Self {
            sim,
            routes,
            server,
            name,
            ctx,
            _dir: dir,
        }
    }

    fn id(&self) -> &'static str {
        self.sim.provider_id()
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.sim.read_write_token(), self.sim.read_only_token()]
    }

    /// A scenario's tally; `done` counts the faults the simulator injected
    /// meanwhile.
    fn tally(&self, fault: &str) -> (Tally, u64) {
        let t = Tally::new(format!("cloud-{fault}-{}", self.id()), &self.secrets());
        (t, self.sim.context().faults.fired())
    }

    fn done(&self, (mut t, fired_before): (Tally, u64)) {
        let fired = self.sim.context().faults.fired() - fired_before;
        t.injected(usize::try_from(fired).unwrap());
        t.finish();
    }

    /// Arms a fault rule (what it really injects is counted by `done`).
    fn arm(&self, rule: FaultRule) {
        self.sim.context().faults.add(rule);
    }

    fn disarm(&self) {
        self.sim.context().faults.clear();
    }

    fn sent(&self, method: &str, path: &str) -> usize {
        self.sim.context().recorder.count(method, path)
    }

    fn boots(&self) -> u64 {
        self.sim.boots(self.server.as_str())
    }

    async fn list(&self) -> Result<ops::SnapshotListResult, OpError> {
        ops::snapshot_list(&self.ctx, Some(&self.name)).await
    }

    async fn restart(&self) -> Result<ops::RestartResult, OpError> {
        ops::restart(&self.ctx, Some(&self.name)).await
    }
}

/// The hint of a request whose outcome is unknown says to check before
/// asking again (never a bare "try again", which could repeat it).
fn told_to_check(t: &mut Tally, err: &OpError) {
    let hint = err.hint.as_deref().unwrap_or("");
    t.check(
        hint.contains("before asking again"),
        format!("the user is told to check before asking again: {hint:?}"),
    );
}

/// 5xx answers and gateway pages: two in a row are ridden out; a server
/// that keeps failing ends in `unavailable` with a hint.
async fn server_errors(c: &Cloud) {
    let (mut t, fired) = c.tally("5xx");
    let api = c.routes.api;
    c.arm(FaultRule::new("GET", api, Fault::Status(500)).times(2));
    let listed = c.list().await;
    t.check(
        listed.is_ok(),
        format!("two 500s are ridden out: {listed:?}"),
    );

    c.arm(FaultRule::new("GET", api, Fault::Status(503)).always());
    let err = c.list().await.unwrap_err();
    assert_user_sees(&mut t, &err, &["unavailable"], &["503"]);
    c.disarm();

    c.arm(FaultRule::new("GET", api, Fault::Gateway(502)).always());
    let err = c.list().await.unwrap_err();
    assert_user_sees(&mut t, &err, &["unavailable"], &["502"]);
    c.disarm();
    t.check(
        c.list().await.is_ok(),
        "the API answers once the fault is gone",
    );
    c.done((t, fired));
}

/// A request that never answers, and answers slower than the client's
/// timeout: a hang on a read is retried; reads that always arrive too late
/// end in `timeout`; a hung reboot is never sent again.
async fn hangs(c: &Cloud) {
    let (mut t, fired) = c.tally("hang");
    let api = c.routes.api;
    c.arm(FaultRule::new("GET", api, Fault::Hang));
    let listed = c.list().await;
    t.check(
        listed.is_ok(),
        format!("one hang is ridden out: {listed:?}"),
    );

    let slow = Fault::Delay(REQUEST_TIMEOUT + Duration::from_millis(500));
    c.arm(FaultRule::new("GET", api, slow).always());
    let err = c.list().await.unwrap_err();
    assert_user_sees(&mut t, &err, &["timeout"], &[]);
    c.disarm();

    let boots = c.boots();
    let sent = c.sent("POST", &c.routes.reboot);
    c.arm(FaultRule::new("POST", &c.routes.reboot, Fault::Hang));
    let err = c.restart().await.unwrap_err();
    assert_user_sees(&mut t, &err, &["timeout"], &[]);
    told_to_check(&mut t, &err);
    let n = assert_at_most_once(
        &mut t,
        &c.sim.context().recorder,
        "POST",
        &c.routes.reboot,
        sent,
    );
    t.check(n == 1, "the hung reboot was sent once");
    t.check(
        c.boots() == boots,
        "a reboot that never took effect did not happen",
    );
    c.disarm();
    c.done((t, fired));
}

/// Malformed and non-JSON bodies: not retried (they are not transient
/// refusals), shown as `unexpected` with a hint; a mangled answer to a
/// reboot that took effect is not sent again.
async fn malformed(c: &Cloud) {
    let (mut t, fired) = c.tally("malformed");
    let api = c.routes.api;
    for fault in [Fault::Malformed, Fault::NotJson] {
        let before = c.sent("GET", api);
        c.arm(FaultRule::new("GET", api, fault));
        let err = c.list().await.unwrap_err();
        assert_user_sees(&mut t, &err, &["unexpected"], &[]);
        t.check(
            c.sent("GET", api) - before == 1,
            "a malformed body is not retried",
        );
    }
    let boots = c.boots();
    let sent = c.sent("POST", &c.routes.reboot);
    c.arm(FaultRule::new("POST", &c.routes.reboot, Fault::Malformed).after_effect());
    match c.restart().await {
        Err(err) => {
            assert_user_sees(&mut t, &err, &["unexpected"], &[]);
            told_to_check(&mut t, &err);
        }
        // Vultr and Linode answer a reboot with no body to read: the
        // mangled one is ignored, and the boot id proves the reboot.
        Ok(done) => {
            t.saw(&format!(
                "success, {}",
                done.steps[0].detail.as_deref().unwrap_or("")
            ));
            t.check(
                done.reboot.boot_id_before.as_deref() != Some(done.reboot.boot_id_after.as_str()),
                "a reboot reported done is proven by a new boot id",
            );
        }
    }
    let n = assert_at_most_once(
        &mut t,
        &c.sim.context().recorder,
        "POST",
        &c.routes.reboot,
        sent,
    );
    t.check(n == 1, "the reboot was sent once");
    wait_for_boot(c, boots + 1).await;
    t.check(c.boots() == boots + 1, "the reboot happened once");
    c.disarm();
    t.check(
        c.list().await.is_ok(),
        "the API answers once the fault is gone",
    );
    c.done((t, fired));
}

/// 429 storms: a short one is waited out as `Retry-After` asks; one that
/// does not end is `rate_limited` with a hint.
async fn rate_limits(c: &Cloud) {
    let (mut t, fired) = c.tally("429-storm");
    let api = c.routes.api;
    let limited = Fault::RateLimited {
        retry_after_secs: 1,
    };
    c.arm(FaultRule::new("GET", api, limited.clone()).times(2));
    let listed = c.list().await;
    t.check(
        listed.is_ok(),
        format!("a storm of two 429s is waited out: {listed:?}"),
    );

    c.arm(FaultRule::new("GET", api, limited).always());
    let err = c.list().await.unwrap_err();
    assert_user_sees(&mut t, &err, &["rate_limited"], &[]);
    c.disarm();
    c.done((t, fired));
}

/// Busy/locked answers: a reboot refused twice is sent a third time and
/// happens once; a snapshot refused every time ends in `invalid_state`
/// with a hint and leaves no snapshot behind.
async fn busy(c: &Cloud) {
    let (mut t, fired) = c.tally("busy");
    let boots = c.boots();
    let sent = c.sent("POST", &c.routes.reboot);
    c.arm(FaultRule::new("POST", &c.routes.reboot, Fault::Busy).times(2));
    let restarted = c.restart().await;
    t.check(
        restarted.is_ok(),
        format!("the reboot goes through once free: {restarted:?}"),
    );
    t.check(
        c.sent("POST", &c.routes.reboot) - sent == 3,
        "two refused reboots and the one that was accepted",
    );
    t.check(c.boots() == boots + 1, "rebooted exactly once");

    let before = c.list().await.unwrap().snapshot_count;
    c.arm(FaultRule::new("POST", &c.routes.create, Fault::Busy).always());
    let err = ops::snapshot_create(&c.ctx, Some(&c.name))
        .await
        .unwrap_err();
    assert_user_sees(&mut t, &err, &["invalid_state"], &[]);
    c.disarm();
    let after = c.list().await.unwrap().snapshot_count;
    t.check(after == before, "a refused snapshot left nothing behind");
    c.done((t, fired));
}

/// Answers lost after (or before) the provider acted: reboot, snapshot
/// creation and restore are each sent exactly once, and the user is told
/// what to check.
async fn at_most_once(c: &Cloud) {
    let (mut t, fired) = c.tally("at-most-once");
    let recorder = &c.sim.context().recorder;

    // Reboot: the provider rebooted, the answer was lost on the way.
    let boots = c.boots();
    let sent = c.sent("POST", &c.routes.reboot);
    c.arm(FaultRule::new("POST", &c.routes.reboot, Fault::Gateway(502)).after_effect());
    let err = c.restart().await.unwrap_err();
    assert_user_sees(&mut t, &err, &["unavailable"], &[]);
    told_to_check(&mut t, &err);
    let n = assert_at_most_once(&mut t, recorder, "POST", &c.routes.reboot, sent);
    t.check(n == 1, "the reboot was sent");
    wait_for_boot(c, boots + 1).await;
    t.check(c.boots() == boots + 1, "the server rebooted exactly once");

    // Snapshot creation: no answer at all.
    let sent = c.sent("POST", &c.routes.create);
    c.arm(FaultRule::new("POST", &c.routes.create, Fault::Hang));
    let err = ops::snapshot_create(&c.ctx, Some(&c.name))
        .await
        .unwrap_err();
    assert_user_sees(&mut t, &err, &["timeout"], &[]);
    told_to_check(&mut t, &err);
    let n = assert_at_most_once(&mut t, recorder, "POST", &c.routes.create, sent);
    t.check(n == 1, "the snapshot was requested");

    // Snapshot creation: taken, but the answer was a 500.
    let before = c.list().await.unwrap().snapshot_count;
    let sent = c.sent("POST", &c.routes.create);
    c.arm(FaultRule::new("POST", &c.routes.create, Fault::Status(500)).after_effect());
    let err = ops::snapshot_create(&c.ctx, Some(&c.name))
        .await
        .unwrap_err();
    assert_user_sees(&mut t, &err, &["unavailable"], &[]);
    told_to_check(&mut t, &err);
    let n = assert_at_most_once(&mut t, recorder, "POST", &c.routes.create, sent);
    t.check(n == 1, "the snapshot was requested once");
    let after = wait_for_snapshots(c, before + 1).await;
    t.check(
        after == before + 1,
        "exactly one snapshot exists for the lost answer",
    );

    // Restore: a 500 before it took effect is not retried.
    let created = ops::snapshot_create(&c.ctx, Some(&c.name)).await.unwrap();
    let sent = c.sent("POST", &c.routes.restore);
    c.arm(FaultRule::new(
        "POST",
        &c.routes.restore,
        Fault::Status(500),
    ));
    let err = ops::snapshot_restore(&c.ctx, Some(&c.name), &created.snapshot.id)
        .await
        .unwrap_err();
    assert_user_sees(&mut t, &err, &["unavailable"], &[]);
    told_to_check(&mut t, &err);
    let n = assert_at_most_once(&mut t, recorder, "POST", &c.routes.restore, sent);
    t.check(n == 1, "the restore was requested once");
    c.disarm();
    let restored = ops::snapshot_restore(&c.ctx, Some(&c.name), &created.snapshot.id).await;
    t.check(
        restored.is_ok(),
        format!("the restore works once the fault is gone: {restored:?}"),
    );
    assert_no_secret(&mut t, &format!("{restored:?}"));
    c.done((t, fired));
}

/// Waits (bounded) until the simulator counted `boots` boots: a reboot
/// whose answer was lost still finishes on the provider's clock.
async fn wait_for_boot(c: &Cloud, boots: u64) {
    for _ in 0..200 {
        if c.boots() >= boots {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until the server has `count` snapshots listed and none
/// is still being taken (the provider keeps the server locked meanwhile);
/// returns the last count seen.
async fn wait_for_snapshots(c: &Cloud, count: usize) -> usize {
    let mut seen = 0;
    for _ in 0..500 {
        if let Ok(list) = c.list().await {
            seen = list.snapshot_count;
            if seen >= count && list.snapshots.iter().all(|s| s.status == "available") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

async fn every_fault(provider: &'static str) {
    let c = Cloud::start(provider).await;
    server_errors(&c).await;
    hangs(&c).await;
    malformed(&c).await;
    rate_limits(&c).await;
    busy(&c).await;
    at_most_once(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hetzner_faults_through_the_operations() {
    every_fault("hetzner").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digitalocean_faults_through_the_operations() {
    every_fault("digitalocean").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vultr_faults_through_the_operations() {
    every_fault("vultr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linode_faults_through_the_operations() {
    every_fault("linode").await;
}
