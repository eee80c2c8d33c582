//! Confirmation of destructive calls through the official Python SDK
//! driving the real `kastell-mcp` over a sandbox server: the person is
//! asked through elicitation (the legacy `elicitation/create` request, and
//! the 2026-07-28 input-required result with its sealed request state) and
//! accept, decline, cancel or silence decide; where safety.json sets
//! `confirm: plan-token`, a client that cannot ask goes through dryRun and
//! a plan token, which is refused replayed, altered, expired, for other
//! arguments or after the state changed. [`Fleet`] and the report helpers
//! are shared with `confirm_final` and `approve`.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use serde_json::{Value, json};

use crate::sdk::{self, Sdk};
use crate::support;

pub(super) fn call(report: &Value, index: usize) -> &Value {
    let call = &report["calls"][index];
    assert!(call.get("error").is_none(), "call {index} raised: {report}");
    &call["result"]
}

pub(super) fn content(report: &Value, index: usize) -> &Value {
    &call(report, index)["structuredContent"]
}

pub(super) fn is_error(report: &Value, index: usize) -> bool {
    call(report, index)["isError"].as_bool().unwrap_or(false)
}

pub(super) struct Fleet {
    pub(super) sandbox: kastell::surfaces::sandbox::Sandbox,
    home: tempfile::TempDir,
    pub(super) env: Vec<(String, String)>,
    pub(super) name: String,
    pub(super) backup_id: String,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// A one-server sandbox with SAFE_MODE off and one backup of a crontab
    /// reading `# backed up`; the crontab then reads `# changed`, which a
    /// restore would undo.
    pub(super) async fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let sandbox = support::one_server_sandbox(dir.path()).await;
        let server = sandbox.servers()[0].clone();
        sandbox
            .hosts()
            .write(server.address, "etc/crontab", "# backed up\n")
            .unwrap();
        let mut env: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
        env.push((
            "KASTELL_DIR".into(),
            sandbox.store().dir().display().to_string(),
        ));
        env.push(("KASTELL_SAFE_MODE".into(), "false".into()));
        for (k, v) in extra {
            env.push(((*k).into(), (*v).into()));
        }
        let mut fleet = Self {
            sandbox,
            home,
            env,
            name: server.name.clone(),
            backup_id: String::new(),
            _dir: dir,
        };
        let report = fleet.run(
            Sdk::Python("legacy"),
            json!([{"name": "server_backup", "arguments": {"action": "backup-create", "server": fleet.name}}]),
            None,
        );
        assert!(!is_error(&report, 0), "{report}");
        fleet.backup_id = content(&report, 0)["backupId"].as_str().unwrap().to_owned();
        fleet.set_crontab("# changed\n");
        fleet
    }

    pub(super) fn set_crontab(&self, text: &str) {
        let address = self.sandbox.servers()[0].address;
        self.sandbox
            .hosts()
            .write(address, "etc/crontab", text)
            .unwrap();
    }

    pub(super) fn crontab(&self) -> String {
        let root = self
            .sandbox
            .hosts()
            .root(self.sandbox.servers()[0].address)
            .unwrap();
        std::fs::read_to_string(root.join("etc/crontab")).unwrap()
    }

    pub(super) fn restore(&self, extra: Value) -> Value {
        let mut args =
            json!({"action": "backup-restore", "server": self.name, "backupId": self.backup_id});
        if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
            a.extend(e);
        }
        json!({"name": "server_backup", "arguments": args})
    }

    pub(super) fn run(&self, client: Sdk, calls: Value, elicit: Option<Value>) -> Value {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut plan = sdk::stdio_plan(self.home.path(), &[], &env);
        plan["calls"] = calls;
        self.run_plan(client, plan, elicit)
    }

    /// Runs `plan` (stdio or HTTP, its calls set) with `client`, answering
    /// questions with `elicit`.
    pub(super) fn run_plan(&self, client: Sdk, mut plan: Value, elicit: Option<Value>) -> Value {
        if let Some(elicit) = elicit {
            plan["elicit"] = elicit;
        }
        let (report, stderr) = sdk::run(client, &plan);
        assert!(
            report.get("connectError").is_none(),
            "{client:?}: {report}\n{stderr}"
        );
        report
    }
}

impl Fleet {
    /// A kastell-mcp over Streamable HTTP on this fleet, answering the
    /// bearer token `token`.
    pub(super) fn http_server(&self, token: &str) -> crate::sdk::HttpServer {
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("KASTELL_MCP_TOKEN", token));
        crate::sdk::HttpServer::start(&[], &env)
    }

    /// Where the store, safety.json, the approvals and the audit log are.
    pub(super) fn dir(&self) -> std::path::PathBuf {
        self.sandbox.store().dir().to_path_buf()
    }

    /// Writes `KASTELL_DIR/safety.json`.
    pub(super) fn set_safety(&self, safety: Value) {
        std::fs::write(self.dir().join("safety.json"), safety.to_string()).unwrap();
    }

    /// The audit log's entries about `op`, oldest first.
    pub(super) fn audit(&self, op: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["op"] == op)
            .collect()
    }

    /// The ids of the server's local backups (its directories, beside
    /// the host lock).
    pub(super) fn backup_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.dir().join("backups").join(&self.name))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect()
    }

    /// Takes one more backup (which changes the server's state: its newest
    /// backup), through the SDK.
    pub(super) fn backup(&self) {
        let report = self.run(
            Sdk::Python("legacy"),
            json!([{"name": "server_backup", "arguments": {"action": "backup-create", "server": self.name}}]),
            None,
        );
        assert!(!is_error(&report, 0), "{report}");
    }
}

/// `safety.json` admitting restores, with `confirm` set.
pub(super) fn confirming(mode: &str) -> Value {
    json!({"level": "destructive", "confirm": mode})
}

/// Each call's action or error, for failure messages.
pub(super) fn summary(report: &Value) -> String {
    let calls = report["calls"].as_array().cloned().unwrap_or_default();
    calls
        .iter()
        .map(|c| {
            let r = &c["result"]["structuredContent"];
            format!(
                "{} {}",
                r["action"].as_str().unwrap_or("-"),
                r["error"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

pub(super) fn assert_not_confirmed(report: &Value, index: usize, why: &str) {
    assert!(is_error(report, index), "{report}");
    let failure = content(report, index);
    assert_eq!(failure["kind"], "cancelled", "{failure}");
    let error = failure["error"].as_str().unwrap();
    assert!(
        error.contains("was not confirmed") && error.contains(why),
        "{why}: {error}"
    );
    assert!(error.contains("nothing was changed"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_asked_through_elicitation_and_only_their_yes_restores() {
    let fleet = Fleet::start(&[("KASTELL_CONFIRM_TIMEOUT", "3")]).await;
    // 2026-07-28 ("auto" negotiates it) gets an input-required result; the
    // SDK asks through its callback and retries with the sealed state.
    for mode in ["legacy", "auto"] {
        let client = Sdk::Python(mode);
        for (answer, why) in [
            (json!({"action": "decline"}), "the user declined"),
            (json!({"action": "cancel"}), "the user cancelled"),
            (
                json!({"action": "accept", "content": {"confirm": false}}),
                "did not tick confirm",
            ),
        ] {
            let report = fleet.run(client, json!([fleet.restore(json!({}))]), Some(answer));
            let negotiated = if mode == "auto" {
                "2026-07-28"
            } else {
                "2025-11-25"
            };
            assert_eq!(report["protocolVersion"], negotiated, "{mode}");
            assert_not_confirmed(&report, 0, why);
            assert_eq!(fleet.crontab(), "# changed\n", "{mode} {why}");
            let asked = &report["elicitations"][0];
            let question = asked["message"].as_str().unwrap();
            assert!(
                question.contains(&format!("Allow backup-restore on {}", fleet.name)),
                "{question}"
            );
            assert!(question.contains("It overwrites:"), "{question}");
            assert!(question.contains("Newest backup:"), "{question}");
            assert!(question.contains("old)"), "{question}");
            assert_eq!(
                asked["requestedSchema"]["properties"]["confirm"]["type"], "boolean",
                "{asked}"
            );
        }
        let yes = json!({"action": "accept", "content": {"confirm": true}});
        let report = fleet.run(client, json!([fleet.restore(json!({}))]), Some(yes));
        assert!(!is_error(&report, 0), "{mode}: {report}");
        assert_eq!(content(&report, 0)["action"], "backup-restore");
        assert_eq!(fleet.crontab(), "# backed up\n", "{mode}");
        fleet.set_crontab("# changed\n");
    }
    // Over the legacy handshake the server waits for the answer itself:
    // none within KASTELL_CONFIRM_TIMEOUT aborts.
    let late = json!({"action": "accept", "content": {"confirm": true}, "delaySeconds": 6});
    let report = fleet.run(
        Sdk::Python("legacy"),
        json!([fleet.restore(json!({}))]),
        Some(late),
    );
    assert_not_confirmed(&report, 0, "no answer within 3 s");
    assert_eq!(fleet.crontab(), "# changed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_confirm_plan_token_a_client_that_cannot_ask_confirms_with_a_bound_plan_token() {
    let fleet = Fleet::start(&[("KASTELL_PLAN_TTL", "8")]).await;
    fleet.backup();
    let other = fleet
        .backup_ids()
        .into_iter()
        .find(|id| *id != fleet.backup_id)
        .unwrap();
    fleet.set_safety(confirming("plan-token"));
    let client = Sdk::Python("legacy");
    let token = |n: usize| json!({"$from": n, "field": "planToken"});
    let report = fleet.run(
        client,
        json!([
            fleet.restore(json!({})),
            fleet.restore(json!({"dryRun": true})),
            // Another (existing) backup id with the token made for this one.
            {"name": "server_backup", "arguments": {"action": "backup-restore", "server": fleet.name,
                "backupId": other, "planToken": token(1)}},
            fleet.restore(json!({"planToken": {"$from": 1, "field": "planToken", "alter": true}})),
        ]),
        None,
    );
    let asked = content(&report, 0);
    assert!(is_error(&report, 0), "{report}");
    assert!(
        asked["error"]
            .as_str()
            .unwrap()
            .contains("needs a confirmation, and this client cannot ask its user"),
        "{asked}"
    );
    assert!(
        asked["hint"].as_str().unwrap().contains("dryRun: true"),
        "{asked}"
    );

    assert!(!is_error(&report, 1), "{report}");
    let plan = content(&report, 1);
    assert_eq!(plan["action"], "plan", "{plan}");
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["plan"]["server"], fleet.name.as_str());
    assert_eq!(plan["plan"]["target"]["backupId"], fleet.backup_id.as_str());
    assert!(
        plan["plan"]["overwrites"]
            .as_str()
            .unwrap()
            .contains("replaced by backup")
    );
    assert!(
        plan["plan"]["snapshotCost"]
            .as_str()
            .unwrap()
            .ends_with("/mo"),
        "{plan}"
    );
    assert!(
        plan["plan"]["newestBackup"]["age"].as_str().is_some(),
        "{plan}"
    );
    assert!(
        plan["summary"]
            .as_str()
            .unwrap()
            .contains("would cost about"),
        "{plan}"
    );
    assert!(plan["planToken"].as_str().unwrap().starts_with("kpt1."));
    assert!(plan["expiresAt"].as_str().is_some());

    let refusal = |i: usize| content(&report, i)["error"].as_str().unwrap().to_owned();
    assert!(
        is_error(&report, 2) && refusal(2).contains("other arguments"),
        "{report}"
    );
    assert!(
        is_error(&report, 3) && refusal(3).contains("not one this kastell-mcp issued"),
        "{report}"
    );
    assert_eq!(
        fleet.crontab(),
        "# changed\n",
        "nothing ran without a good token: {}",
        summary(&report)
    );

    // A fresh process (tokens are sealed with a key of its own): the plan
    // runs once.
    let report = fleet.run(
        client,
        json!([
            fleet.restore(json!({"dryRun": true})),
            fleet.restore(json!({"planToken": token(0)})),
            fleet.restore(json!({"planToken": token(0)})),
        ]),
        None,
    );
    let refusal = |i: usize| content(&report, i)["error"].as_str().unwrap().to_owned();
    assert!(!is_error(&report, 1), "{}", summary(&report));
    assert_eq!(fleet.crontab(), "# backed up\n");
    assert!(
        is_error(&report, 2) && refusal(2).contains("already used"),
        "{}",
        summary(&report)
    );

    // A token outlives neither its TTL nor a change of state.
    fleet.set_crontab("# changed\n");
    let report = fleet.run(
        client,
        json!([
            fleet.restore(json!({"dryRun": true})),
            {"name": "server_backup", "arguments": {"action": "backup-create", "server": fleet.name}},
            fleet.restore(json!({"planToken": token(0)})),
            fleet.restore(json!({"dryRun": true})),
            {"sleepBefore": 9, "name": "server_backup", "arguments": {"action": "backup-restore",
                "server": fleet.name, "backupId": fleet.backup_id, "planToken": token(3)}},
        ]),
        None,
    );
    let refusal = |i: usize| content(&report, i)["error"].as_str().unwrap().to_owned();
    assert!(!is_error(&report, 1), "{report}");
    assert!(
        is_error(&report, 2) && refusal(2).contains("changed since"),
        "{report}"
    );
    assert!(
        is_error(&report, 4) && refusal(4).contains("expired"),
        "{report}"
    );
    assert_eq!(fleet.crontab(), "# changed\n");

    // KASTELL_CONFIRM=off is the original tool: SAFE_MODE alone decides.
    let off = Fleet::start(&[("KASTELL_CONFIRM", "off")]).await;
    let report = off.run(client, json!([off.restore(json!({}))]), None);
    assert!(!is_error(&report, 0), "{report}");
    assert_eq!(off.crontab(), "# backed up\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_token_made_for_one_server_is_refused_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = kastell::surfaces::sandbox::SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 2,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = kastell::surfaces::sandbox::Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let names: Vec<String> = sandbox.servers().iter().map(|s| s.name.clone()).collect();
    let mut env: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    env.push((
        "KASTELL_DIR".into(),
        sandbox.store().dir().display().to_string(),
    ));
    env.push(("KASTELL_SAFE_MODE".into(), "false".into()));
    std::fs::write(
        sandbox.store().dir().join("safety.json"),
        confirming("plan-token").to_string(),
    )
    .unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut run = sdk::stdio_plan(home.path(), &[], &env);
    // Each server has a snapshot of its own (a snapshot that is not listed
    // is refused before any plan is made).
    let create = |server: &str| json!({"name": "server_backup", "arguments": {"action": "snapshot-create", "server": server}});
    let delete = |server: &str, from: usize, extra: Value| {
        let mut args = json!({"action": "snapshot-delete", "server": server,
            "snapshotId": {"$from": from, "pointer": "/snapshot/id"}});
        if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
            a.extend(e);
        }
        json!({"name": "server_backup", "arguments": args})
    };
    run["calls"] = json!([
        create(&names[0]),
        create(&names[1]),
        delete(&names[0], 0, json!({"dryRun": true})),
        delete(
            &names[1],
            1,
            json!({"planToken": {"$from": 2, "field": "planToken"}})
        ),
    ]);
    let (report, stderr) = sdk::run(Sdk::Python("legacy"), &run);
    for created in [0, 1] {
        assert!(!is_error(&report, created), "{report}\n{stderr}");
    }
    assert!(!is_error(&report, 2), "{report}\n{stderr}");
    let plan = content(&report, 2);
    assert!(
        plan["plan"]["overwrites"]
            .as_str()
            .unwrap()
            .contains("cannot be undone"),
        "{plan}"
    );
    assert!(is_error(&report, 3), "{}", summary(&report));
    let refusal = content(&report, 3)["error"].as_str().unwrap();
    assert!(
        refusal.contains(&format!("made for server {}, not {}", names[0], names[1])),
        "{refusal}"
    );
}

/// Over Streamable HTTP each request may get a server of its own (and a
/// 2026-07-28 request always does): the sealed request state and (with
/// `confirm: plan-token`) the plan token still confirm exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_hold_over_streamable_http() {
    const TOKEN: &str = "a-test-bearer-token-for-confirmations";
    let fleet = Fleet::start(&[]).await;
    fleet.set_safety(confirming("plan-token"));
    let server = fleet.http_server(TOKEN);
    let yes = json!({"action": "accept", "content": {"confirm": true}});
    let mut plan = server.plan(TOKEN);
    plan["calls"] = json!([fleet.restore(json!({}))]);
    plan["elicit"] = yes;
    let (report, stderr) = sdk::run(Sdk::Python("auto"), &plan);
    assert_eq!(
        report["protocolVersion"], "2026-07-28",
        "{report}\n{stderr}"
    );
    assert!(!is_error(&report, 0), "{}\n{stderr}", summary(&report));
    assert_eq!(fleet.crontab(), "# backed up\n");
    assert_eq!(report["elicitations"].as_array().map(Vec::len), Some(1));

    fleet.set_crontab("# changed\n");
    let mut plan = server.plan(TOKEN);
    plan["calls"] = json!([
        fleet.restore(json!({"dryRun": true})),
        fleet.restore(json!({"planToken": {"$from": 0, "field": "planToken"}})),
        fleet.restore(json!({"planToken": {"$from": 0, "field": "planToken"}})),
    ]);
    let (report, stderr) = sdk::run(Sdk::Python("legacy"), &plan);
    assert!(!is_error(&report, 1), "{}\n{stderr}", summary(&report));
    assert!(is_error(&report, 2), "{}", summary(&report));
    assert!(
        content(&report, 2)["error"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        summary(&report)
    );
    assert_eq!(fleet.crontab(), "# backed up\n");
    let log = server.stop();
    assert!(!log.contains(TOKEN), "the bearer token reached the log");
}

/// Where confirmation is off (`KASTELL_CONFIRM=off`, or `confirm: off` in
/// safety.json), a dry run still only plans: it answers the plan with
/// `confirm: off`, restores nothing and is audited as a dry run; the same
/// call without dryRun then restores at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_only_plans_where_confirmation_is_off() {
    let by_env = Fleet::start(&[("KASTELL_CONFIRM", "off")]).await;
    let by_file = Fleet::start(&[]).await;
    by_file.set_safety(confirming("off"));
    for (label, fleet) in [("KASTELL_CONFIRM=off", by_env), ("confirm: off", by_file)] {
        let report = fleet.run(
            Sdk::Python("legacy"),
            json!([fleet.restore(json!({"dryRun": true}))]),
            None,
        );
        assert!(!is_error(&report, 0), "{label}: {report}");
        let plan = content(&report, 0);
        assert_eq!(plan["dryRun"], true, "{label}: the dry run ran: {plan}");
        assert_eq!(plan["confirm"], "off", "{label}: {plan}");
        assert!(plan.get("planToken").is_none(), "{label}: {plan}");
        assert_eq!(fleet.crontab(), "# changed\n", "{label}: it restored");
        let outcomes: Vec<Value> = fleet
            .audit("backup-restore")
            .iter()
            .map(|e| e["outcome"].clone())
            .collect();
        assert_eq!(outcomes, [json!("dry-run")], "{label}");

        let report = fleet.run(
            Sdk::Python("legacy"),
            json!([fleet.restore(json!({}))]),
            None,
        );
        assert!(!is_error(&report, 0), "{label}: {report}");
        assert_eq!(fleet.crontab(), "# backed up\n", "{label}");
    }
}

/// A restore naming a backup that is malformed (`../../etc`) or that the
/// server does not have is refused before anything is asked, on every
/// route (a person, a plan token, the operator), naming the id and how to
/// list the valid ones; nothing is recorded as a decline, nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_does_not_exist_is_refused_before_anyone_is_asked() {
    let fleet = Fleet::start(&[("KASTELL_CONFIRM_TIMEOUT", "3")]).await;
    let missing = "2020-01-01_00-00-00-000";
    let naming = |id: &str, extra: Value| {
        let mut call = fleet.restore(extra);
        call["arguments"]["backupId"] = json!(id);
        call
    };
    let assert_refused = |report: &Value, index: usize, kind: &str, id: &str| {
        assert!(is_error(report, index), "{report}");
        let refusal = content(report, index);
        assert_eq!(refusal["kind"], kind, "{refusal}");
        assert!(refusal["error"].as_str().unwrap().contains(id), "{refusal}");
        assert!(
            refusal["hint"].as_str().unwrap().contains("backup-list"),
            "{refusal}"
        );
        assert!(refusal.get("planToken").is_none(), "{refusal}");
    };
    let yes = json!({"action": "accept", "content": {"confirm": true}});
    for mode in ["legacy", "auto"] {
        let report = fleet.run(
            Sdk::Python(mode),
            json!([
                naming("../../etc", json!({})),
                naming(missing, json!({})),
                naming(missing, json!({"dryRun": true})),
            ]),
            Some(yes.clone()),
        );
        assert_eq!(
            report["elicitations"].as_array().map_or(0, Vec::len),
            0,
            "nobody is asked: {report}"
        );
        assert_refused(&report, 0, "invalid_input", "../../etc");
        assert_refused(&report, 1, "not_found", missing);
        assert!(
            content(&report, 1)["error"]
                .as_str()
                .unwrap()
                .contains(&fleet.name),
            "{report}"
        );
        assert_refused(&report, 2, "not_found", missing);
    }
    // No plan token for it, and no request waiting for the operator.
    for mode in ["plan-token", "approve"] {
        fleet.set_safety(confirming(mode));
        let report = fleet.run(
            Sdk::Python("legacy"),
            json!([
                naming(missing, json!({"dryRun": true})),
                naming(missing, json!({}))
            ]),
            None,
        );
        assert_refused(&report, 0, "not_found", missing);
        assert_refused(&report, 1, "not_found", missing);
    }
    let approvals = std::fs::read_to_string(fleet.dir().join("approvals.json")).unwrap_or_default();
    assert!(!approvals.contains(missing), "{approvals}");
    assert!(!fleet.dir().join("declines.json").exists());
    for entry in fleet.audit("backup-restore") {
        let confirmed = entry["confirmed"].as_str().unwrap_or_default();
        assert!(!confirmed.contains("declined"), "{entry}");
    }
    assert_eq!(fleet.crontab(), "# changed\n");
}
