//! `kastell drill --scratch` of a Coolify server through the real binary
//! on the sandbox's fake Docker: the rehearsal recovers the server onto a
//! throwaway one, checks every app there (the blog's rows per table
//! against its dump, the site's files and checksums against the backup's
//! tar, each container running) before deleting it, and records each
//! app's result; a platform install failure, an app whose data changed on
//! the new server and a corrupt app artifact each fail the drill, naming
//! what failed, with the throwaway server deleted.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "coolify"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use serde_json::Value;

use crate::support;

struct World {
    sandbox: Sandbox,
    home: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl World {
    /// A Coolify server at Hetzner with the demo apps, `spares` hosts for
    /// throwaway servers, and one backup of it.
    async fn new(spares: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let plan = SandboxPlan {
            providers: Some(vec!["hetzner".into()]),
            servers_per_provider: 1,
            manual_server: false,
            platform: Some("coolify".into()),
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
    async fn leftovers(&self) -> Vec<Value> {
        let out = self.kastell(&["--json", "doctor"]).await;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["leftovers"]["found"].as_array().unwrap().clone()
    }
}

fn step_names(answer: &Value) -> Vec<String> {
    answer["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coolify_scratch_drill_checks_every_app_on_the_new_server_before_deleting_it() {
    let w = World::new(2).await;
    let done = w
        .json(&["--json", "drill", "hetzner-web", "--scratch", "--force"])
        .await;
    assert_eq!(done["success"], true, "{done}");
    let apps = done["apps"].as_array().unwrap();
    let by_key = |key: &str| {
        apps.iter()
            .find(|a| a["app"] == key)
            .unwrap_or_else(|| panic!("{key} in {done}"))
    };
    let blog = by_key("pgblog0k2m9x");
    assert_eq!(blog["kind"], "postgres");
    assert_eq!(blog["passed"], true, "{blog}");
    assert!(
        blog["detail"]
            .as_str()
            .unwrap()
            .contains("253 rows in 2 table(s)"),
        "3 posts and 250 tags: {blog}"
    );
    let site = by_key("apsite0k2m9x");
    assert_eq!(site["volume"], "apsite0k2m9x-uploads");
    assert_eq!(site["passed"], true, "{site}");
    assert!(
        site["detail"].as_str().unwrap().contains("3 file(s)"),
        "index.html, photo.jpg and the empty file: {site}"
    );
    let shop = by_key("myshop0k2m9x");
    assert_eq!(shop["kind"], "mysql");
    assert_eq!(shop["passed"], true, "{shop}");
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
    assert!(w.leftovers().await.is_empty(), "its server was deleted");

    // verifications.json keeps each app's result and every phase's time.
    let file = w.sandbox.store().dir().join("verifications.json");
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
        phases.contains(&"Check app site (apsite0k2m9x) on the new server: apsite0k2m9x-uploads"),
        "{phases:?}"
    );
    assert!(phases.contains(&"Install Coolify"), "{phases:?}");

    let status = w.json(&["--json", "status", "hetzner-web"]).await;
    assert_eq!(status["lastRecovery"]["durationMs"], done["recoveryMs"]);
    let text = w.kastell(&["status", "hetzner-web"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("3 app(s) checked on the new server"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_coolify_drills_delete_their_server_and_name_what_failed() {
    let w = World::new(4).await;

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
    w.sandbox.hosts().drift_on_start("index.html").unwrap();
    let failed = w.failing_drill().await;
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
        step_names(&failed).last().unwrap(),
        "Delete the throwaway server"
    );
    assert!(w.leftovers().await.is_empty());
    std::fs::remove_file(w.sandbox.hosts().state_dir().join("paas/common/drift")).unwrap();

    // A corrupt app artifact: found once the server exists; deleted.
    let backups = w.sandbox.store().dir().join("backups").join("hetzner-web");
    let artifact = std::fs::read_dir(&backups)
        .unwrap()
        .map(|b| b.unwrap().path())
        .filter(|b| b.is_dir())
        .flat_map(|b| std::fs::read_dir(b).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("app-pgblog0k2m9x-postgres")
        })
        .unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();
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
