//! Snapshot rotation on every provider's simulator: only kastell's own
//! snapshots (its `kastell-<epoch-ms>` marker) are ever deleted, a dry run
//! sends no request that changes anything, a schedule that stopped
//! refuses the rotation and deletes nothing, and the CLI run is audited.
//! Snapshots are taken through each provider's real client, named as
//! kastell names them on the days the test needs.
#![cfg(all(
    feature = "sandbox",
    feature = "hetzner",
    feature = "digitalocean",
    feature = "vultr",
    feature = "linode",
    feature = "bare"
))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kastell::ops::{self, Context, RotateArgs};
use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell::{Env, Surface};
use kastell_core::CloudProviderExt;

use crate::support;

const DAY_MS: i64 = 86_400_000;

/// `snapshot rotate` of server `name` by `rules`, applied (`--apply`).
async fn apply(
    ctx: &Context,
    name: &str,
    rules: RotateArgs,
) -> ops::OpResult<ops::SnapshotRotateResult> {
    let rules = RotateArgs {
        apply: true,
        ..rules
    };
    ops::snapshot_rotate(ctx, Some(name), &rules).await
}

fn unsafe_mode() -> Env {
    Env::from_pairs([("KASTELL_SAFE_MODE", "false")])
}

/// Takes a snapshot of `server` named `name` through its provider's client
/// and waits until it is available.
async fn take(ctx: &Context, server: &str, name: &str) {
    let record = ctx.store.resolve(Some(server)).unwrap();
    let provider = ctx.provider_for(&record).unwrap();
    let id = ops::server_id(&record).unwrap();
    provider
        .snapshot_and_wait(&id, name, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{server}: {name}: {e}"));
}

/// The ids and names of `server`'s snapshots, by id.
async fn names(ctx: &Context, server: &str) -> Vec<(String, String)> {
    let listed = ops::snapshot_list(ctx, Some(server)).await.unwrap();
    let mut names: Vec<(String, String)> = listed
        .snapshots
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    names.sort();
    names
}

/// When a snapshot named with `ms` was taken, as rotation shows it.
fn taken(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_kastells_snapshots_go_on_every_provider_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: None,
        servers_per_provider: 2,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    let now = chrono::Utc::now().timestamp_millis();
    let mut providers = Vec::new();
    for server in sandbox.servers() {
        let provider = server.provider.unwrap();
        if providers.contains(&provider) {
            continue; // one server per provider: its seeded snapshots differ
        }
        providers.push(provider);
        let name = server.name.as_str();
        let today = format!("kastell-{now}");
        let yesterday = format!("kastell-maintain-{}", now - DAY_MS);
        let older = format!("kastell-{}", now - 2 * DAY_MS);
        let oldest = format!("kastell-{}", now - 3 * DAY_MS);
        let by_hand = format!("nightly-{}", now - 3 * DAY_MS);
        for snapshot in [&today, &yesterday, &older, &oldest, &by_hand] {
            take(&ctx, name, snapshot).await;
        }
        let before = names(&ctx, name).await;
        let recorder = &sandbox.simulator(provider).unwrap().context().recorder;
        let writes = recorder.writes();

        let rules = RotateArgs {
            keep_daily: Some(2),
            ..RotateArgs::default()
        };
        let dry = ops::snapshot_rotate(&ctx, Some(name), &rules)
            .await
            .unwrap_or_else(|e| panic!("{provider}: {e:?}"));
        assert_eq!(
            recorder.writes(),
            writes,
            "{provider}: a dry run changes nothing"
        );
        assert!(!dry.applied);
        // Names as each provider keeps them (Linode's labels differ); the
        // time kastell wrote into them is the same everywhere.
        let doomed: Vec<&str> = dry.deleted.iter().map(|s| s.taken_at.as_str()).collect();
        assert_eq!(
            doomed,
            [taken(now - 2 * DAY_MS), taken(now - 3 * DAY_MS)],
            "{provider}"
        );
        let kept: Vec<&str> = dry.kept.iter().map(|s| s.taken_at.as_str()).collect();
        assert_eq!(kept, [taken(now), taken(now - DAY_MS)], "{provider}");
        assert!(
            dry.message.starts_with("Dry run: would delete 2"),
            "{}",
            dry.message
        );
        assert_eq!(
            names(&ctx, name).await,
            before,
            "{provider}: nothing deleted"
        );
        if dry.monthly_cost_before != "unknown" {
            assert_ne!(
                dry.monthly_cost_before, dry.monthly_cost_after,
                "{provider}"
            );
        }

        let deletes = recorder.count("DELETE", "");
        let applied = apply(&ctx, name, rules)
            .await
            .unwrap_or_else(|e| panic!("{provider}: {e:?}"));
        assert!(applied.applied);
        assert_eq!(applied.deleted.len(), 2, "{provider}");
        assert_eq!(recorder.count("DELETE", "") - deletes, 2, "{provider}");
        assert_eq!(
            recorder.writes() - writes,
            2,
            "{provider}: only the deletes"
        );
        let left = names(&ctx, name).await;
        let gone: Vec<&str> = applied.deleted.iter().map(|s| s.id.as_str()).collect();
        let expected: Vec<(String, String)> = before
            .iter()
            .filter(|(id, _)| !gone.contains(&id.as_str()))
            .cloned()
            .collect();
        assert_eq!(left, expected, "{provider}: everything else stays");
        assert!(
            left.iter().any(|(_, n)| n.contains("nightly")),
            "{provider}: the snapshot taken by hand stays: {left:?}"
        );
    }
    assert_eq!(providers.len(), 4, "{providers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hetzner_snapshot_named_like_kastells_without_its_label_is_never_rotated() {
    // Hetzner's marker is the image label `managed-by=kastell`.
    a_copycat_is_never_rotated("hetzner", |id, name| {
        (
            format!("/servers/{id}/actions/create_image"),
            serde_json::json!({"type": "snapshot", "description": name}),
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digitalocean_snapshot_named_like_kastells_without_its_tag_is_never_rotated() {
    // DigitalOcean's marker is the image tag `kastell-managed`.
    a_copycat_is_never_rotated("digitalocean", |id, name| {
        (
            format!("/droplets/{id}/actions"),
            serde_json::json!({"type": "snapshot", "name": name}),
        )
    })
    .await;
}

/// On a one-server sandbox at `provider`: two snapshots kastell takes and
/// one another tool takes (`request(server id, name)`: the path and body
/// of that raw request) with a name kastell would give, but without
/// kastell's marker. Keeping the newest, rotation deletes only kastell's
/// older one; the copycat stays.
async fn a_copycat_is_never_rotated(
    provider: &str,
    request: impl Fn(&str, &str) -> (String, serde_json::Value),
) {
    let dir = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(vec![provider.into()]),
        servers_per_provider: 1,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    let server = sandbox.servers()[0].clone();
    let now = chrono::Utc::now().timestamp_millis();
    take(&ctx, &server.name, &format!("kastell-{now}")).await;
    take(&ctx, &server.name, &format!("kastell-{}", now - 2 * DAY_MS)).await;
    let record = ctx.store.resolve(Some(&server.name)).unwrap();
    let id = ops::server_id(&record).unwrap();
    let sim = sandbox.simulator(provider).unwrap();
    let copycat = format!("kastell-{}", now - DAY_MS);
    let (path, body) = request(id.as_str(), &copycat);
    let made = kastell_testkit::raw::call(sim, "POST", &path, Some(body)).await;
    assert!(
        (200..300).contains(&made.status),
        "{provider}: {}: {:?}",
        made.status,
        made.body
    );
    let provider_api = ctx.provider_for(&record).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = provider_api.list_snapshots(&id).await.unwrap();
        let ours: Vec<_> = listed
            .iter()
            .filter(|s| s.name.starts_with("kastell-"))
            .collect();
        let ready = ours.len() == 3
            && ours
                .iter()
                .all(|s| s.status == kastell_core::types::SnapshotStatus::Available);
        if ready {
            break listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{provider}: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for snapshot in listed.iter().filter(|s| s.name.starts_with("kastell-")) {
        let marked = snapshot.name != copycat;
        assert_eq!(snapshot.managed, Some(marked), "{provider}: {snapshot:?}");
    }

    let keep_last = RotateArgs {
        keep_last: Some(1),
        ..RotateArgs::default()
    };
    let done = apply(&ctx, &server.name, keep_last).await.unwrap();
    let kept: Vec<&str> = done.kept.iter().map(|s| s.taken_at.as_str()).collect();
    assert_eq!(kept, [taken(now)], "{provider}");
    let gone: Vec<&str> = done.deleted.iter().map(|s| s.taken_at.as_str()).collect();
    assert_eq!(
        gone,
        [taken(now - 2 * DAY_MS)],
        "{provider}: only kastell's marked one"
    );
    assert!(
        names(&ctx, &server.name)
            .await
            .iter()
            .any(|(_, name)| *name == copycat),
        "{provider}: the unmarked one stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_that_stopped_refuses_the_rotation_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    let server = sandbox.servers()[0].clone();
    let now = chrono::Utc::now().timestamp_millis();
    for age in [3, 4, 5] {
        take(
            &ctx,
            &server.name,
            &format!("kastell-{}", now - age * DAY_MS),
        )
        .await;
    }
    let before = names(&ctx, &server.name).await;
    let recorder = &sandbox.simulator("hetzner").unwrap().context().recorder;
    let writes = recorder.writes();
    let schedule = RotateArgs {
        keep_daily: Some(7),
        keep_last: Some(1),
        ..RotateArgs::default()
    };
    let err = apply(&ctx, &server.name, schedule).await.unwrap_err();
    assert!(err.error.contains("3 days old"), "{}", err.error);
    assert!(err.error.contains("--keep-daily"), "{}", err.error);
    assert!(err.hint.as_deref().unwrap().contains("snapshot create"));
    assert_eq!(recorder.writes(), writes, "nothing deleted");
    assert_eq!(names(&ctx, &server.name).await, before);

    // --keep-last implies no schedule: the newest is kept, the rest go.
    let keep_last = RotateArgs {
        keep_last: Some(1),
        ..RotateArgs::default()
    };
    let done = apply(&ctx, &server.name, keep_last).await.unwrap();
    assert_eq!(done.deleted.len(), 2);
    assert_eq!(done.kept[0].taken_at, taken(now - 3 * DAY_MS));
    assert_eq!(recorder.writes() - writes, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_rotates_as_a_dry_run_by_default_and_the_audit_log_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    let server = sandbox.servers()[0].clone();
    let now = chrono::Utc::now().timestamp_millis();
    for age in [0, 1] {
        take(
            &ctx,
            &server.name,
            &format!("kastell-{}", now - age * DAY_MS),
        )
        .await;
    }
    let recorder = &sandbox.simulator("hetzner").unwrap().context().recorder;
    let writes = recorder.writes();
    let out = support::kastell_in(
        &sandbox,
        home.path(),
        &[
            "--json",
            "snapshot",
            "rotate",
            "--keep-last",
            "1",
            "--force",
            &server.name,
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["applied"], false, "{result}");
    assert_eq!(result["deleted"].as_array().unwrap().len(), 1, "{result}");
    assert_eq!(recorder.writes(), writes, "the CLI's default is a dry run");
    let audit = std::fs::read_to_string(sandbox.store().dir().join("audit.jsonl")).unwrap();
    assert!(audit.contains("snapshot-rotate"), "{audit}");

    let out = support::kastell_in(
        &sandbox,
        home.path(),
        &["snapshot", "rotate", "--force", &server.name],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no keep rule given"), "{stderr}");
}
