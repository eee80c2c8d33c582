//! A person's "no" is final: after the user declines a restore through
//! the official Python SDK, neither a plan token nor a dry run gets round
//! it, on every protocol version that can ask (2025-06-18 and 2025-11-25
//! with `elicitation/create`, 2026-07-28 with an input-required result),
//! from the same client or another one, in the same kastell-mcp or a new
//! one; the refusals are audited. A change of state ends it. (Older
//! versions have no elicitation: `approve` covers them.)
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use serde_json::{Value, json};

use super::confirm::{Fleet, assert_not_confirmed, confirming, content, is_error, summary};
use crate::sdk::Sdk;

/// The SDK's mode, the version its handshake offers (`None`: its own) and
/// the version negotiated.
const VERSIONS: [(&str, Option<&str>, &str); 3] = [
    ("legacy", Some("2025-06-18"), "2025-06-18"),
    ("legacy", None, "2025-11-25"),
    ("auto", None, "2026-07-28"),
];

fn assert_said_no(report: &Value, index: usize) {
    assert!(is_error(report, index), "{}", summary(report));
    let refusal = content(report, index);
    assert_eq!(refusal["kind"], "permission_denied", "{refusal}");
    let error = refusal["error"].as_str().unwrap();
    assert!(
        error.contains("The user said no to backup-restore")
            && error.contains("Nothing was changed"),
        "{error}"
    );
}

/// The probe's attack, with a real token: one kastell-mcp over HTTP seals
/// every session's tokens with the same key, so a token made for a client
/// that cannot ask would be valid for the session whose user declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_restore_is_not_run_by_a_plan_token_or_a_dry_run_on_any_protocol_version() {
    const TOKEN: &str = "a-test-bearer-token-for-declines";
    let fleet = Fleet::start(&[]).await;
    // The weakest mode that confirms at all: the user's no holds even here.
    fleet.set_safety(confirming("plan-token"));
    let server = fleet.http_server(TOKEN);
    for (mode, handshake, negotiated) in VERSIONS {
        // A fresh state for each version, so no earlier decline applies.
        fleet.backup();
        let mut plan = server.plan(TOKEN);
        plan["calls"] = json!([fleet.restore(json!({"dryRun": true}))]);
        let report = fleet.run_plan(Sdk::Python("legacy"), plan, None);
        let token = content(&report, 0)["planToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no plan token: {report}"))
            .to_owned();

        let mut plan = server.plan(TOKEN);
        if let Some(version) = handshake {
            plan["handshakeVersion"] = json!(version);
        }
        plan["calls"] = json!([
            fleet.restore(json!({})),
            fleet.restore(json!({"planToken": token})),
            fleet.restore(json!({"dryRun": true})),
        ]);
        let report = fleet.run_plan(Sdk::Python(mode), plan, Some(json!({"action": "decline"})));
        assert_eq!(report["protocolVersion"], negotiated, "{report}");
        assert_not_confirmed(&report, 0, "the user declined");
        assert_said_no(&report, 1);
        assert_said_no(&report, 2);
        assert_eq!(
            report["elicitations"].as_array().map(Vec::len),
            Some(1),
            "{negotiated}: the token was refused, not asked about"
        );

        // Another client, one that cannot ask, with the same token.
        let mut plan = server.plan(TOKEN);
        plan["calls"] = json!([fleet.restore(json!({"planToken": token}))]);
        let report = fleet.run_plan(Sdk::Python("legacy"), plan, None);
        assert_said_no(&report, 0);
        assert_eq!(
            fleet.crontab(),
            "# changed\n",
            "{negotiated}: the restore ran"
        );
    }
    server.stop();
    let entries = fleet.audit("backup-restore");
    let noted = |outcome: &str, prefix: &str| {
        entries
            .iter()
            .filter(|e| {
                e["outcome"] == outcome
                    && e["plan_token"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix))
            })
            .count()
    };
    assert_eq!(
        noted("declined", "declined by the user (the user declined)"),
        VERSIONS.len()
    );
    assert_eq!(
        noted(
            "refused",
            "refused: declined by the user: the user declined earlier"
        ),
        3 * VERSIONS.len(),
        "{entries:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_outlives_the_kastell_mcp_that_heard_it_until_the_state_changes() {
    let fleet = Fleet::start(&[]).await;
    fleet.set_safety(confirming("plan-token"));
    let report = fleet.run(
        Sdk::Python("legacy"),
        json!([fleet.restore(json!({}))]),
        Some(json!({"action": "cancel"})),
    );
    assert_not_confirmed(&report, 0, "the user cancelled");
    // A new kastell-mcp and a client that cannot ask.
    let report = fleet.run(
        Sdk::Python("legacy"),
        json!([fleet.restore(json!({"dryRun": true}))]),
        None,
    );
    assert_said_no(&report, 0);
    assert!(
        content(&report, 0)["error"]
            .as_str()
            .unwrap()
            .contains("the user cancelled"),
        "{report}"
    );
    assert_eq!(fleet.crontab(), "# changed\n");
    // A new backup changes the state the user said no to.
    fleet.backup();
    let report = fleet.run(
        Sdk::Python("legacy"),
        json!([
            fleet.restore(json!({"dryRun": true})),
            fleet.restore(json!({"planToken": {"$from": 0, "field": "planToken"}})),
        ]),
        None,
    );
    assert!(!is_error(&report, 1), "{}", summary(&report));
    assert_eq!(fleet.crontab(), "# backed up\n");
}
