//! `kastell recover` and `kastell drill --scratch` through the real binary
//! on the sandbox (real sshd, the providers' simulators creating servers on
//! the sandbox's spare fake hosts): a Hetzner server's backup recovered
//! onto a new DigitalOcean server with its files, healthy, joined to the
//! fleet with the old record marked; a scratch drill that deletes its
//! server and records its time; failures injected halfway (a provider
//! error on create, a corrupt artifact, SIGTERM and SIGKILL of the drill)
//! that delete what was created or leave it marked for `kastell doctor`.
#![cfg(all(
    feature = "sandbox",
    feature = "hetzner",
    feature = "digitalocean",
    feature = "bare"
))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_sim::{Fault, FaultRule};
use serde_json::Value;

use crate::support;

const CRONTAB: &str = "etc/crontab";

struct World {
    sandbox: Sandbox,
    home: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let plan = SandboxPlan {
            providers: Some(vec!["hetzner".into(), "digitalocean".into()]),
            servers_per_provider: 1,
            manual_server: false,
            platform: None,
            spare_hosts_per_provider: 2,
        };
        let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
            .await
            .unwrap();
        Self {
            sandbox,
            home,
            _dir: dir,
        }
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

    /// `kastell --json doctor`'s leftovers: marked servers outside the
    /// fleet, found at every provider.
    async fn leftovers(&self) -> Vec<String> {
        support::leftovers(&self.sandbox, self.home.path()).await
    }

    fn web(&self) -> &kastell::surfaces::sandbox::SandboxServer {
        self.sandbox.server("hetzner-web").unwrap()
    }

    fn crontab_of(&self, ip: &str) -> String {
        let root = self.sandbox.hosts().root(ip.parse().unwrap()).unwrap();
        std::fs::read_to_string(root.join(CRONTAB)).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hetzner_server_comes_back_at_digitalocean_with_its_files_and_joins_the_fleet() {
    let w = World::new().await;
    let web = w.web().clone();
    let original = w.crontab_of(&web.address.to_string());
    assert!(original.contains("nightly-report"), "{original}");
    let backup = w.json(&["--json", "backup", "create", "hetzner-web"]).await;
    // The server is destroyed: its files are gone.
    let root = w.sandbox.hosts().root(web.address).unwrap();
    std::fs::remove_dir_all(root.join("etc")).unwrap();

    let plan = w
        .kastell(&[
            "recover",
            "hetzner-web",
            "--to",
            "digitalocean",
            "--dry-run",
        ])
        .await;
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{plan_text}");
    assert!(
        plan_text.contains("/mo"),
        "the plan shows the price: {plan_text}"
    );

    let done = w
        .json(&[
            "--json",
            "recover",
            "hetzner-web",
            "--to",
            "digitalocean",
            "--force",
        ])
        .await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(done["backupId"], backup["backupId"]);
    let new_ip = done["newIp"].as_str().unwrap().to_owned();
    assert!(
        w.sandbox.spares().iter().any(|a| a.to_string() == new_ip),
        "{new_ip} is a spare host"
    );
    assert_eq!(
        w.crontab_of(&new_ip),
        original,
        "the files are back, on the new host"
    );
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for phase in [
        "Create server at digitalocean",
        "Wait for SSH",
        "Install Bare server",
        "Health check",
        "Join the fleet",
    ] {
        assert!(steps.contains(&phase), "{phase}: {steps:?}");
    }

    let store = w.sandbox.store();
    let new = store.find("hetzner-web-recovered").unwrap().unwrap();
    assert_eq!(new.provider.as_deref(), Some("digitalocean"));
    assert_eq!(new.ip, new_ip);
    assert!(
        new.ssh.as_ref().unwrap().host_key.is_some(),
        "host key pinned"
    );
    let old = store.find("hetzner-web").unwrap().unwrap();
    assert_eq!(old.extra["replacedBy"], "hetzner-web-recovered");

    let health = w.json(&["--json", "health", "hetzner-web-recovered"]).await;
    assert_eq!(health["healthy"], true, "{health}");
    let status = w.json(&["--json", "status", "hetzner-web"]).await;
    assert_eq!(status["replacedBy"], "hetzner-web-recovered", "{status}");
    assert!(
        w.leftovers().await.is_empty(),
        "the recovered server is in the fleet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_drill_deletes_its_server_and_status_shows_the_recovery_time() {
    let w = World::new().await;
    w.json(&["--json", "backup", "create", "hetzner-web"]).await;
    let done = w
        .json(&["--json", "drill", "hetzner-web", "--scratch", "--force"])
        .await;
    assert_eq!(done["success"], true, "{done}");
    let ms = done["recoveryMs"].as_u64().unwrap();
    assert!(ms > 0);
    assert!(w.leftovers().await.is_empty(), "its server was deleted");
    let status = w.json(&["--json", "status", "hetzner-web"]).await;
    assert_eq!(status["lastRecovery"]["proof"], "scratch", "{status}");
    assert_eq!(status["lastRecovery"]["durationMs"], ms);
    let text = w.kastell(&["status", "hetzner-web"]).await;
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("last recovery: "),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let store = w.sandbox.store();
    assert_eq!(store.servers().unwrap().len(), 2, "the fleet is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_halfway_delete_the_drills_server_or_leave_it_marked() {
    let w = World::new().await;
    w.json(&["--json", "backup", "create", "hetzner-web"]).await;

    // A provider error on create: nothing is created, nothing is left.
    let sim = w.sandbox.simulator("hetzner").unwrap();
    sim.context()
        .faults
        .add(FaultRule::new("POST", "/servers", Fault::Status(422)));
    let out = w
        .kastell(&["drill", "hetzner-web", "--scratch", "--force"])
        .await;
    assert!(!out.status.success());
    assert!(w.leftovers().await.is_empty());

    // A corrupt artifact: found after the server was created; deleted.
    support::corrupt_artifact(w.sandbox.store().dir(), "hetzner-web", "bare-config");
    let out = w
        .kastell(&["--json", "drill", "hetzner-web", "--scratch", "--force"])
        .await;
    assert!(!out.status.success());
    let failed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = failed["steps"].to_string();
    assert!(steps.contains("Create server at hetzner"), "{failed}");
    assert!(steps.contains("Delete the throwaway server"), "{failed}");
    assert!(w.leftovers().await.is_empty(), "deleted after the failure");
}

/// Starts `kastell drill hetzner-web --scratch --force` with the fake
/// hosts' systemd "starting" (the health check waits), and returns it once
/// its server exists and is being checked.
async fn drill_in_health_check(w: &World) -> std::process::Child {
    w.json(&["--json", "backup", "create", "hetzner-web"]).await;
    w.sandbox
        .hosts()
        .set_state("system-state", "starting")
        .unwrap();
    w.sandbox.hosts().clear_log().unwrap();
    let child = support::spawn_kastell_in(
        &w.sandbox,
        w.home.path(),
        &["drill", "hetzner-web", "--scratch", "--force"],
    );
    support::wait_until("the drill's health check", || {
        w.sandbox
            .hosts()
            .log()
            .iter()
            .any(|l| l.contains("systemctl is-system-running"))
    })
    .await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_drill_deletes_its_server_and_a_killed_one_leaves_it_for_doctor() {
    let w = World::new().await;
    let mut child = drill_in_health_check(&w).await;
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(!status.success());
    w.sandbox
        .hosts()
        .set_state("system-state", "running")
        .unwrap();
    assert!(
        w.leftovers().await.is_empty(),
        "SIGTERM: the drill deleted its server"
    );

    w.sandbox
        .hosts()
        .set_state("system-state", "starting")
        .unwrap();
    let mut child = drill_in_health_check(&w).await;
    child.kill().unwrap();
    child.wait().unwrap();
    w.sandbox
        .hosts()
        .set_state("system-state", "running")
        .unwrap();
    let left = w.leftovers().await;
    assert_eq!(left.len(), 1, "SIGKILL leaves the marked server: {left:?}");
    assert!(left[0].contains("kastell-drill-hetzner-web"), "{left:?}");
    let fixed = w.kastell(&["--json", "doctor", "--fix"]).await;
    let report: Value = serde_json::from_slice(&fixed.stdout).unwrap();
    assert_eq!(
        report["leftovers"]["deleted"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert!(w.leftovers().await.is_empty());
}

/// `kastell --json doctor [--fix]`'s whole report, and its exit status.
async fn doctor(w: &World, fix: bool) -> (Value, bool) {
    let args: &[&str] = if fix {
        &["--json", "doctor", "--fix"]
    } else {
        &["--json", "doctor"]
    };
    let out = w.kastell(args).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.success())
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_leaves_a_marked_key_that_doctor_fix_deletes() {
    let w = World::new().await;
    w.json(&["--json", "backup", "create", "hetzner-web"]).await;
    let sim = w.sandbox.simulator("digitalocean").unwrap();
    let person = sim.person_ssh_key().unwrap();
    assert_eq!(
        sim.ssh_keys(),
        std::slice::from_ref(&person),
        "only the person's key"
    );

    // The droplet creation is lost at a gateway before DigitalOcean made
    // anything: kastell cannot know, so it keeps the key it uploaded.
    sim.context()
        .faults
        .add(FaultRule::new("POST", "/v2/droplets", Fault::Gateway(502)).times(1));
    let out = w
        .kastell(&["recover", "hetzner-web", "--to", "digitalocean", "--force"])
        .await;
    assert!(!out.status.success(), "the create failed");
    assert!(sim.created_servers().is_empty(), "no droplet was made");
    let keys = sim.ssh_keys();
    assert_eq!(keys.len(), 2, "the person's and kastell's: {keys:?}");
    let left = keys.iter().find(|k| **k != person).unwrap().clone();

    let (report, healthy) = doctor(&w, false).await;
    assert!(!healthy, "a leftover key needs attention: {report}");
    let found = strings(&report["leftovers"]["keys"]);
    assert_eq!(found.len(), 1, "{report}");
    assert!(
        found[0].starts_with(&format!("digitalocean SSH key {left} ")),
        "{found:?}"
    );
    assert!(found[0].contains("kastell-managed-recovery-"), "{found:?}");
    assert!(found[0].contains("doctor --fix"), "{found:?}");
    assert!(
        strings(&report["leftovers"]["found"]).is_empty(),
        "no server left"
    );
    assert_eq!(
        sim.ssh_keys().len(),
        2,
        "doctor without --fix deletes nothing"
    );
    let text = w.kastell(&["doctor"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("leftover: digitalocean SSH key {left} ")),
        "{text}"
    );

    let (fixed, _) = doctor(&w, true).await;
    let deleted = strings(&fixed["leftovers"]["keysDeleted"]);
    assert_eq!(deleted.len(), 1, "{fixed}");
    assert!(deleted[0].contains(&left), "{deleted:?}");
    assert_eq!(sim.ssh_keys(), [person], "the person's key is kept");
    let (after, _) = doctor(&w, false).await;
    assert!(strings(&after["leftovers"]["keys"]).is_empty(), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_create_the_next_recover_reuses_kastells_key_without_doctor() {
    let w = World::new().await;
    w.json(&["--json", "backup", "create", "hetzner-web"]).await;
    let sim = w.sandbox.simulator("digitalocean").unwrap();
    let person = sim.person_ssh_key().unwrap();
    sim.context()
        .faults
        .add(FaultRule::new("POST", "/v2/droplets", Fault::Gateway(502)).times(1));
    let out = w
        .kastell(&["recover", "hetzner-web", "--to", "digitalocean", "--force"])
        .await;
    assert!(!out.status.success(), "the create failed");
    let keys = sim.ssh_keys();
    let left = keys.iter().find(|k| **k != person).unwrap().clone();

    // DigitalOcean refuses a second copy of the public key: the next
    // recover reuses kastell's marked one instead of failing.
    let done = w
        .json(&[
            "--json",
            "recover",
            "hetzner-web",
            "--to",
            "digitalocean",
            "--force",
        ])
        .await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(
        sim.ssh_keys(),
        keys,
        "no key was uploaded or deleted: the left one is in use"
    );
    let (report, _) = doctor(&w, false).await;
    assert!(
        strings(&report["leftovers"]["keys"]).is_empty(),
        "the reused key is the new server's, not an orphan: {report}"
    );
    assert_eq!(sim.created_servers().len(), 1);
    assert!(keys.contains(&left));
}
