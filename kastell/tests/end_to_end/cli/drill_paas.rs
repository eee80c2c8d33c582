//! `kastell drill --scratch` of Coolify and Dokploy servers through the
//! real binary on the sandbox's fake Docker: the rehearsal recovers the
//! server onto a throwaway one, checks every app there (the blog's rows per
//! table against its dump, the site's files and checksums against the
//! backup's tar, each container running and, where it declares a Docker
//! health check, healthy: a `starting` one waited for) before deleting it,
//! and records each app's result; a platform install failure, an app whose
//! data changed on the new server, an unhealthy app and a corrupt app
//! artifact each fail the drill, naming what failed, with the throwaway
//! server deleted; a drill killed outright leaves its marked server, which
//! `kastell doctor` lists and the next drill deletes.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "coolify"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use serde_json::Value;

use crate::support;

/// The demo apps' keys: the blog's PostgreSQL, the shop's MySQL and the
/// site with its volume.
const BLOG: &str = "pgblog0k2m9x";
const SHOP: &str = "myshop0k2m9x";
const SITE: &str = "apsite0k2m9x";

struct World {
    sandbox: Sandbox,
    home: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl World {
    /// A server at Hetzner running `platform` (a registry id) with the
    /// demo apps, `spares` hosts for throwaway servers, and one backup of
    /// it.
    async fn new(platform: &str, spares: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let plan = SandboxPlan {
            providers: Some(vec!["hetzner".into()]),
            servers_per_provider: 1,
            manual_server: false,
            platform: Some(platform.into()),
            spare_hosts_per_provider: spares,
        };
        let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
            .await
            .unwrap();
        let w = Self {
            sandbox,
            home,
            _dir: dir,
        };
        let backup = w.json(&["--json", "backup", "create", "hetzner-web"]).await;
        assert_eq!(backup["apps"].as_array().unwrap().len(), 3, "{backup}");
        w
    }

    async fn kastell(&self, args: &[&str]) -> Output {
        support::kastell_in(&self.sandbox, self.home.path(), args).await
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.kastell(args).await;
        assert!(
            out.status.success(),
            "{args:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A scratch drill that must fail: its JSON answer.
    async fn failing_drill(&self) -> Value {
        let out = self
            .kastell(&["--json", "drill", "hetzner-web", "--scratch", "--force"])
            .await;
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Marked servers outside the fleet, as `kastell doctor` finds them.
    async fn leftovers(&self) -> Vec<String> {
        support::leftovers(&self.sandbox, self.home.path()).await
    }

    /// A scratch drill that must pass, with what every pass shows: each
    /// demo app checked on the new server before it was deleted, its
    /// result and each phase's time in verifications.json and status.
    /// `product` is the platform's name (`Coolify`). Returns the answer.
    async fn passing_drill(&self, product: &str) -> Value {
        let done = self
            .json(&["--json", "drill", "hetzner-web", "--scratch", "--force"])
            .await;
        assert_eq!(done["success"], true, "{done}");
        let blog = app(&done, BLOG);
        assert_eq!(blog["kind"], "postgres");
        assert_eq!(blog["passed"], true, "{blog}");
        assert!(
            detail(blog).contains("253 rows in 2 table(s)"),
            "3 posts and 250 tags: {blog}"
        );
        let site = app(&done, SITE);
        assert_eq!(site["volume"], "apsite0k2m9x-uploads");
        assert_eq!(site["passed"], true, "{site}");
        assert!(
            detail(site).contains("3 file(s)"),
            "index.html, photo.jpg and the empty file: {site}"
        );
        let shop = app(&done, SHOP);
        assert_eq!(shop["kind"], "mysql");
        assert_eq!(shop["passed"], true, "{shop}");
        assert!(
            detail(shop).contains("checked by the artifact's checksum only"),
            "a MySQL's rows are not counted, and it says so: {shop}"
        );
        let steps = step_names(&done);
        let checked = steps
            .iter()
            .position(|s| s == "Check app blog db (pgblog0k2m9x) on the new server: postgres")
            .unwrap_or_else(|| panic!("{steps:?}"));
        let deleted = steps
            .iter()
            .position(|s| s == "Delete the throwaway server")
            .unwrap();
        assert!(checked < deleted, "checked before the deletion: {steps:?}");
        assert!(self.leftovers().await.is_empty(), "its server was deleted");

        // verifications.json keeps each app's result and every phase's time.
        let file = self.sandbox.store().dir().join("verifications.json");
        let proofs: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let last = proofs["verifications"].as_array().unwrap().last().unwrap();
        assert_eq!(last["proof"], "scratch");
        assert_eq!(last["apps"].as_array().unwrap().len(), 3, "{last}");
        let phases: Vec<&str> = last["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            phases
                .contains(&"Check app site (apsite0k2m9x) on the new server: apsite0k2m9x-uploads"),
            "{phases:?}"
        );
        let install = format!("Install {product}");
        assert!(phases.contains(&install.as_str()), "{phases:?}");

        let status = self.json(&["--json", "status", "hetzner-web"]).await;
        assert_eq!(status["lastRecovery"]["durationMs"], done["recoveryMs"]);
        let text = self.kastell(&["status", "hetzner-web"]).await;
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("3 app(s) checked on the new server"),
            "{text}"
        );
        done
    }

    /// Makes every running container of every app's volume append to
    /// `index.html` when started again (as a restore starts it).
    fn drift_on_start(&self) {
        self.sandbox.hosts().drift_on_start("index.html").unwrap();
    }

    fn stop_drifting(&self) {
        std::fs::remove_file(self.sandbox.hosts().state_dir().join("paas/common/drift")).unwrap();
    }
}

/// The check of app `key` in a drill's answer.
fn app<'a>(done: &'a Value, key: &str) -> &'a Value {
    done["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == key)
        .unwrap_or_else(|| panic!("{key} in {done}"))
}

fn detail(app: &Value) -> &str {
    app["detail"].as_str().unwrap()
}

fn step_names(answer: &Value) -> Vec<String> {
    answer["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A failed drill's answer names the site, its changed file and both
/// checksums, and not the blog (whose data is as in the backup); its
/// last step deleted the server and doctor finds nothing left.
async fn assert_drift_named(w: &World, failed: &Value) {
    let text = failed.to_string();
    assert!(text.contains("site (apsite0k2m9x)"), "{failed}");
    assert!(
        text.contains("file index.html: the backup's sha256 "),
        "{failed}"
    );
    assert!(
        !text.contains("blog db (pgblog0k2m9x): "),
        "the blog's data is as in the backup: {failed}"
    );
    assert_eq!(
        step_names(failed).last().unwrap(),
        "Delete the throwaway server"
    );
    assert!(w.leftovers().await.is_empty(), "deleted after the failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coolify_scratch_drill_checks_every_app_on_the_new_server_before_deleting_it() {
    let w = World::new("coolify", 2).await;
    let done = w.passing_drill("Coolify").await;
    assert!(
        detail(app(&done, BLOG)).starts_with("running; "),
        "no health check declared: running is what is checked: {done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_coolify_drills_delete_their_server_and_name_what_failed() {
    let w = World::new("coolify", 4).await;

    // The platform's installer cannot be fetched on the new server.
    w.sandbox
        .hosts()
        .fail_shared(
            "https://cdn.coollabs.io/coolify/install.sh",
            22,
            "curl: (22) The requested URL returned error: 503",
        )
        .unwrap();
    let failed = w.failing_drill().await;
    let steps = step_names(&failed);
    assert!(steps.contains(&"Install Coolify".to_owned()), "{failed}");
    assert!(
        !steps.iter().any(|s| s.starts_with("Check app")),
        "{failed}"
    );
    assert_eq!(steps.last().unwrap(), "Delete the throwaway server");
    assert!(w.leftovers().await.is_empty(), "deleted after the failure");

    // An app whose files change on the new server: the drill names it,
    // the file, and both checksums.
    w.drift_on_start();
    let failed = w.failing_drill().await;
    assert_drift_named(&w, &failed).await;
    w.stop_drifting();

    // A corrupt app artifact: found once the server exists; deleted.
    support::corrupt_artifact(
        w.sandbox.store().dir(),
        "hetzner-web",
        "app-pgblog0k2m9x-postgres",
    );
    let failed = w.failing_drill().await;
    let steps = step_names(&failed);
    assert!(
        steps.contains(&"Create server at hetzner".to_owned()),
        "{failed}"
    );
    assert_eq!(steps.last().unwrap(), "Delete the throwaway server");
    assert!(
        failed.to_string().contains("app-pgblog0k2m9x-postgres"),
        "{failed}"
    );
    assert!(w.leftovers().await.is_empty(), "deleted after the failure");
}

#[cfg(feature = "dokploy")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dokploy_scratch_drill_checks_every_app_and_waits_for_a_starting_health_check() {
    let w = World::new("dokploy", 1).await;
    // The blog's container declares a health check that says `starting`
    // twice before `healthy`: a drill that did not wait would fail it.
    let hosts = w.sandbox.hosts();
    hosts
        .set_app_health(BLOG, Some("starting 2 healthy"))
        .unwrap();
    hosts.set_app_health(SITE, Some("healthy")).unwrap();
    let done = w.passing_drill("Dokploy").await;
    assert!(
        detail(app(&done, BLOG)).starts_with("running and healthy; 253 rows"),
        "{done}"
    );
    assert!(
        detail(app(&done, SITE)).starts_with("running and healthy; 3 file(s)"),
        "{done}"
    );
    assert!(
        detail(app(&done, SHOP)).starts_with("running; "),
        "no health check declared: {done}"
    );
}

#[cfg(feature = "dokploy")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dokploy_drill_names_the_changed_and_the_unhealthy_app_and_deletes_its_server() {
    let w = World::new("dokploy", 1).await;
    // The site's Swarm task rewrites index.html when it starts again
    // after its volume was restored; the shop's health check fails.
    w.drift_on_start();
    w.sandbox
        .hosts()
        .set_app_health(SHOP, Some("unhealthy"))
        .unwrap();
    let failed = w.failing_drill().await;
    assert_drift_named(&w, &failed).await;
    let text = failed.to_string();
    assert!(
        text.contains(
            "shop db (myshop0k2m9x): Docker's health check of its container says unhealthy"
        ),
        "{failed}"
    );
    assert!(
        step_names(&failed).contains(&"Install Dokploy".to_owned()),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_paas_drill_leaves_its_marked_server_for_doctor_and_the_next_drill_deletes_it() {
    let w = World::new("coolify", 2).await;
    let sim = w.sandbox.simulator("hetzner").unwrap();
    let fleet = sim.created_servers();
    // The blog's health check never settles: the drill waits there, with
    // its server created, the platform installed and the data restored.
    w.sandbox
        .hosts()
        .set_app_health(BLOG, Some("starting"))
        .unwrap();
    let mut child = support::spawn_kastell_in(
        &w.sandbox,
        w.home.path(),
        &["drill", "hetzner-web", "--scratch", "--force"],
    );
    let spare = w.sandbox.spares()[0];
    let log = w
        .sandbox
        .hosts()
        .state_dir()
        .join(format!("paas/hosts/{spare}/commands.log"));
    support::wait_until("the drill's look at the blog's health", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains(".State.Health.Status"))
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    // Everything the drill created is marked: doctor lists it, and says
    // how to delete it.
    let created: Vec<String> = sim
        .created_servers()
        .into_iter()
        .filter(|id| !fleet.contains(id))
        .collect();
    assert_eq!(created.len(), 1, "the drill's server: {created:?}");
    let left = w.leftovers().await;
    assert_eq!(left.len(), 1, "SIGKILL leaves the marked server: {left:?}");
    assert!(
        left[0].contains(&format!("server {} ", created[0]))
            && left[0].contains("kastell-drill-hetzner-web")
            && left[0].contains(", drill): a scratch drill's server"),
        "{left:?}"
    );
    let text = w.kastell(&["doctor"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("doctor --fix"), "{text}");

    // The next drill deletes it before it creates its own, and passes.
    w.sandbox.hosts().set_app_health(BLOG, None).unwrap();
    let done = w
        .json(&["--json", "drill", "hetzner-web", "--scratch", "--force"])
        .await;
    assert_eq!(done["success"], true, "{done}");
    let warnings = done["warnings"].to_string();
    assert!(
        warnings.contains(&format!("deleted hetzner server {} ", created[0]))
            && warnings.contains("left by an earlier drill"),
        "{done}"
    );
    assert!(w.leftovers().await.is_empty(), "{done}");
    assert_eq!(
        sim.created_servers(),
        fleet,
        "nothing the drills created is left"
    );
}
