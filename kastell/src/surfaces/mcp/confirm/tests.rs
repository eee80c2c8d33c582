use super::*;

fn blast(server: &str, fingerprint: &str) -> BlastRadius {
    BlastRadius {
        action: "backup-restore".into(),
        server: server.into(),
        ip: "203.0.113.10".into(),
        platform: "bare".into(),
        provider: None,
        overwrites: "files".into(),
        target: None,
        newest_backup: None,
        snapshot_cost: None,
        fingerprint: fingerprint.into(),
    }
}

fn codec() -> RequestStateCodec {
    RequestStateCodec::try_new(vec![7u8; 32]).unwrap()
}

fn token(codec: &RequestStateCodec, digest: &str, b: &BlastRadius, ttl: Duration) -> String {
    seal(codec, "plan", digest, b, ttl).unwrap()
}

#[test]
fn a_token_opens_once_for_its_arguments_server_and_state() {
    let codec = codec();
    let b = blast("web-1", &"ab".repeat(32));
    let t = token(&codec, "args-1", &b, PLAN_TTL);
    assert!(open(&codec, &t, "plan", "args-1", &b).is_ok());
    let (replayed, _) = open(&codec, &t, "plan", "args-1", &b).unwrap_err();
    assert!(replayed.contains("already used"), "{replayed}");
}

#[test]
fn altered_foreign_expired_and_mismatched_tokens_are_refused() {
    let codec = codec();
    let b = blast("web-1", &"ab".repeat(32));
    let t = token(&codec, "args-1", &b, PLAN_TTL);
    let mut altered = t.clone().into_bytes();
    let last = altered.len() - 3;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let (why, _) = open(&codec, &altered, "plan", "args-1", &b).unwrap_err();
    assert!(why.contains("not one this kastell-mcp issued"), "{why}");
    let other = RequestStateCodec::try_new(vec![9u8; 32]).unwrap();
    let (why, _) = open(&other, &t, "plan", "args-1", &b).unwrap_err();
    assert!(why.contains("not one this kastell-mcp issued"), "{why}");
    let (why, _) = open(&codec, &t, "plan", "args-2", &b).unwrap_err();
    assert!(why.contains("other arguments"), "{why}");
    let (why, _) = open(
        &codec,
        &t,
        "plan",
        "args-1",
        &blast("web-2", &"ab".repeat(32)),
    )
    .unwrap_err();
    assert!(why.contains("made for server web-1, not web-2"), "{why}");
    let (why, _) = open(
        &codec,
        &t,
        "plan",
        "args-1",
        &blast("web-1", &"cd".repeat(32)),
    )
    .unwrap_err();
    assert!(why.contains("changed since"), "{why}");
    let (why, _) = open(&codec, &t, "ask", "args-1", &b).unwrap_err();
    assert!(why.contains("wrong kind"), "{why}");
    let short = token(&codec, "args-1", &b, Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(20));
    let (why, _) = open(&codec, &short, "plan", "args-1", &b).unwrap_err();
    assert!(why.contains("expired"), "{why}");
}

#[test]
fn a_client_that_can_ask_is_always_asked_and_one_that_cannot_waits_for_the_operator() {
    use ConfirmMode::*;
    for (mode, can_ask, route) in [
        (Ask, true, Some(Route::Ask)),
        (Ask, false, Some(Route::Approve)),
        (PlanToken, true, Some(Route::Ask)),
        (PlanToken, false, Some(Route::PlanToken)),
        (Approve, true, Some(Route::Approve)),
        (Approve, false, Some(Route::Approve)),
        (Off, true, None),
        (Off, false, None),
    ] {
        assert_eq!(Route::of(mode, can_ask), route, "{mode} can_ask={can_ask}");
    }
    // The default never hands the model a way to confirm itself.
    assert_ne!(
        Route::of(ConfirmMode::DEFAULT, false),
        Some(Route::PlanToken)
    );
}

#[test]
fn the_arguments_digest_ignores_order_and_the_confirmation_fields() {
    let a: JsonObject =
        serde_json::from_str(r#"{"action":"backup-restore","server":"web-1","backupId":"b1"}"#)
            .unwrap();
    let b: JsonObject = serde_json::from_str(
        r#"{"backupId":"b1","planToken":"x","server":"web-1","dryRun":true,"action":"backup-restore"}"#,
    )
    .unwrap();
    assert_eq!(
        arguments_digest("server_backup", &a),
        arguments_digest("server_backup", &b)
    );
    let c: JsonObject =
        serde_json::from_str(r#"{"action":"backup-restore","server":"web-2","backupId":"b1"}"#)
            .unwrap();
    assert_ne!(
        arguments_digest("server_backup", &a),
        arguments_digest("server_backup", &c)
    );
}

#[test]
fn a_null_argument_is_absent_for_the_digest_too() {
    let args = |v: serde_json::Value| v.as_object().unwrap().clone();
    let plain = arguments_digest(
        "server_backup",
        &args(serde_json::json!({"action": "backup-restore", "backupId": "b1"})),
    );
    let nulls = arguments_digest(
        "server_backup",
        &args(
            serde_json::json!({"action": "backup-restore", "backupId": "b1", "repo": null, "dryRun": true}),
        ),
    );
    assert_eq!(plain, nulls);
    let other = arguments_digest(
        "server_backup",
        &args(serde_json::json!({"action": "backup-restore", "backupId": "b2"})),
    );
    assert_ne!(plain, other);
}
