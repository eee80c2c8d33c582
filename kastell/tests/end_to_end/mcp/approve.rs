//! Consent the model cannot reach: a client that cannot ask (by default),
//! or any client where safety.json says `confirm: approve`, gets a request
//! id and "waiting for approval"; the operator answers `kastell approve
//! ID` on a terminal (a pseudo-terminal from `script` here); the retried
//! call runs once. Without a terminal approving is refused, a denial is
//! final, a replay after the run is refused, and each decision is audited.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use super::confirm::{Fleet, confirming, content, is_error, summary};
use crate::sdk::Sdk;

/// `kastell args` on the fleet's store, in a session of its own: no
/// controlling terminal, whatever the test runner has.
fn kastell(fleet: &Fleet, args: &[&str]) -> Output {
    Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_kastell"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", fleet.dir())
        .envs(fleet.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `kastell approve ID` on a pseudo-terminal (`script`), typing `answer`.
fn approve_at_terminal(fleet: &Fleet, id: &str, answer: &str) -> Output {
    let line = format!("'{}' approve {id}", env!("CARGO_BIN_EXE_kastell"));
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", fleet.dir())
        .envs(fleet.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The request a waiting answer names.
fn waiting(report: &Value, index: usize) -> String {
    assert!(!is_error(report, index), "{}", summary(report));
    let answer = content(report, index);
    assert_eq!(answer["action"], "approval-pending", "{answer}");
    assert_eq!(answer["status"], "waiting", "{answer}");
    let id = answer["request"].as_str().unwrap().to_owned();
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("waiting for approval")
            && message.contains(&format!("`kastell approve {id}`")),
        "{message}"
    );
    id
}

fn pending(fleet: &Fleet) -> Vec<Value> {
    let out = kastell(fleet, &["--json", "approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_approves_at_a_terminal_and_the_call_runs_once() {
    let fleet = Fleet::start(&[]).await;
    let client = Sdk::Python("legacy");
    // No safety.json: a client that cannot ask waits for the operator; a
    // plan token confirms nothing and a dry run hands none out.
    let report = fleet.run(
        client,
        json!([
            fleet.restore(json!({})),
            fleet.restore(json!({"planToken": "kpt1.made-up"})),
            fleet.restore(json!({"dryRun": true})),
        ]),
        None,
    );
    let id = waiting(&report, 0);
    assert_eq!(waiting(&report, 1), id);
    assert!(
        content(&report, 1)["message"]
            .as_str()
            .unwrap()
            .starts_with("still waiting")
    );
    let plan = content(&report, 2);
    assert_eq!(plan["action"], "plan", "{plan}");
    assert_eq!(plan["confirm"], "approve", "{plan}");
    assert!(plan.get("planToken").is_none(), "{plan}");
    assert_eq!(fleet.crontab(), "# changed\n");

    // Listed with its blast radius; approving needs a terminal.
    let listed = kastell(&fleet, &["approve"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    assert!(
        listing.contains(&id) && listing.contains("It overwrites:"),
        "{listing}"
    );
    let refused = kastell(&fleet, &["approve", &id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("needs a terminal"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(pending(&fleet).len(), 1, "still pending");

    let approved = approve_at_terminal(&fleet, &id, "yes\n");
    let shown = text(&approved.stdout);
    assert!(
        approved.status.success(),
        "{shown}{}",
        text(&approved.stderr)
    );
    assert!(
        shown.contains(&format!("Allow backup-restore on {}", fleet.name))
            && shown.contains(&format!("Request {id} approved")),
        "{shown}"
    );

    let report = fleet.run(
        client,
        json!([fleet.restore(json!({})), fleet.restore(json!({}))]),
        None,
    );
    assert!(!is_error(&report, 0), "{}", summary(&report));
    assert_eq!(content(&report, 0)["action"], "backup-restore");
    assert_eq!(fleet.crontab(), "# backed up\n");
    assert!(is_error(&report, 1), "{}", summary(&report));
    let replay = content(&report, 1);
    assert!(
        replay["error"].as_str().unwrap().contains(&format!(
            "Request {id} was approved once and has already run"
        )),
        "{replay}"
    );
    let next = pending(&fleet);
    assert_eq!(next.len(), 1, "the replay made a new request");
    let next = next[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(next, id);
    assert!(replay["hint"].as_str().unwrap().contains(&next), "{replay}");

    // A denial is final, for the request and for dry runs.
    fleet.set_crontab("# changed\n");
    let denied = kastell(&fleet, &["approve", &next, "--deny"]);
    assert!(denied.status.success(), "{}", text(&denied.stderr));
    let report = fleet.run(
        client,
        json!([
            fleet.restore(json!({})),
            fleet.restore(json!({"dryRun": true}))
        ]),
        None,
    );
    for i in [0, 1] {
        assert!(is_error(&report, i), "{}", summary(&report));
    }
    assert!(
        content(&report, 0)["error"]
            .as_str()
            .unwrap()
            .contains(&format!("The operator denied request {next}")),
        "{report}"
    );
    assert!(
        content(&report, 1)["error"]
            .as_str()
            .unwrap()
            .contains("the operator denied request"),
        "{report}"
    );
    assert_eq!(fleet.crontab(), "# changed\n");

    let outcomes = |op: &str| -> Vec<String> {
        fleet
            .audit(op)
            .iter()
            .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(outcomes("approve"), ["refused", "ok"]);
    assert_eq!(outcomes("deny"), ["ok"]);
    let ran = fleet.audit("backup-restore");
    assert!(
        ran.iter().any(|e| e["outcome"] == "ok"
            && e["plan_token"] == format!("approved by the operator (request {id})")),
        "{ran:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_approve_holds_even_for_a_client_that_can_ask_and_a_bad_mode_is_refused() {
    let fleet = Fleet::start(&[]).await;
    fleet.set_safety(confirming("approve"));
    let yes = json!({"action": "accept", "content": {"confirm": true}});
    for mode in ["legacy", "auto"] {
        let report = fleet.run(
            Sdk::Python(mode),
            json!([fleet.restore(json!({}))]),
            Some(yes.clone()),
        );
        waiting(&report, 0);
        assert_eq!(
            report["elicitations"].as_array().map(Vec::len),
            Some(0),
            "{mode}: the user was asked instead of the operator"
        );
    }
    let waiting_now = pending(&fleet);
    assert_eq!(waiting_now.len(), 1, "both clients wait on one request");
    let id = waiting_now[0]["id"].as_str().unwrap();
    let denied = approve_at_terminal(&fleet, id, "n\n");
    assert!(denied.status.success(), "{}", text(&denied.stdout));
    assert!(
        text(&denied.stdout).contains("denied"),
        "{}",
        text(&denied.stdout)
    );
    assert_eq!(fleet.crontab(), "# changed\n");

    fleet.set_safety(confirming("sometimes"));
    let report = fleet.run(
        Sdk::Python("legacy"),
        json!([fleet.restore(json!({}))]),
        None,
    );
    assert!(is_error(&report, 0), "{report}");
    let error = content(&report, 0).to_string();
    assert!(
        error.contains("Unknown confirmation mode")
            && error.contains("ask, approve, plan-token or off"),
        "{error}"
    );
}

/// 2024-11-05 and 2025-03-26 have no elicitation (the SDK refuses the
/// request even when it declares the capability): such a client waits for
/// the operator, and is never sent a question it cannot answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_versions_without_elicitation_wait_for_the_operator() {
    let fleet = Fleet::start(&[]).await;
    let no = json!({"action": "decline"});
    let mut ids = Vec::new();
    for version in ["2024-11-05", "2025-03-26"] {
        let mut plan = crate::sdk::stdio_plan(
            &fleet.dir(),
            &[],
            &fleet
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        plan["handshakeVersion"] = json!(version);
        plan["calls"] = json!([fleet.restore(json!({}))]);
        let report = fleet.run_plan(Sdk::Python("legacy"), plan, Some(no.clone()));
        assert_eq!(report["protocolVersion"], version, "{report}");
        ids.push(waiting(&report, 0));
        assert_eq!(report["elicitations"].as_array().map(Vec::len), Some(0));
    }
    assert_eq!(ids[0], ids[1], "the same call waits on the same request");
    assert_eq!(fleet.crontab(), "# changed\n");
}
