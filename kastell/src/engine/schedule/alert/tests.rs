use super::*;

const SLACK: &str = "https://hooks.slack.com/services/T0001/B0002/s3cr3tT0kenValue";

fn alert() -> Alert {
    Alert {
        kind: AlertKind::Failure,
        title: "kastell: kastell-backup-web-1.service failed on box".to_owned(),
        message: "it failed".to_owned(),
        unit: Some("kastell-backup-web-1.service".to_owned()),
        host: "box".to_owned(),
        time: "2026-01-01T00:00:00+00:00".to_owned(),
        journal: vec!["line one".to_owned(), "line two".to_owned()],
    }
}

#[test]
fn only_http_and_https_are_accepted_and_never_echoed() {
    for bad in [
        "ftp://files.example/s3cr3tT0kenValue",
        "file:///etc/s3cr3tT0kenValue",
        "javascript:s3cr3tT0kenValue",
        "not a url s3cr3tT0kenValue",
    ] {
        let err = Webhook::new(bad, Format::Slack).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{bad}: {err}");
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{bad}");
    }
    assert!(Webhook::new("http://127.0.0.1:9/x", Format::Json).is_ok());
    let err = Webhook::from_env(&Env::from_pairs::<&str, &str>([])).unwrap_err();
    assert!(err.to_string().contains(WEBHOOK_VAR));
}

#[test]
fn the_format_comes_from_the_environment() {
    let env = |v: &str| Env::from_pairs([(FORMAT_VAR, v)]);
    assert_eq!(
        Format::from_env(&Env::from_pairs::<&str, &str>([])).unwrap(),
        Format::Slack
    );
    assert_eq!(Format::from_env(&env("NTFY")).unwrap(), Format::Ntfy);
    assert_eq!(Format::from_env(&env(" json ")).unwrap(), Format::Json);
    assert_eq!(Format::from_env(&env("")).unwrap(), Format::Slack);
    assert_eq!(Format::from_env(&env("Discord")).unwrap(), Format::Discord);
    assert_eq!(
        Format::from_env(&env("telegram")).unwrap(),
        Format::Telegram
    );
    let err = Format::from_env(&env("teams")).unwrap_err();
    let hint = err.hint().unwrap_or_default();
    assert!(hint.contains("ntfy") && hint.contains("telegram"), "{hint}");
}

#[test]
fn the_url_is_shown_as_scheme_and_host_only() {
    let hook = Webhook::new(SLACK, Format::Slack).unwrap();
    assert_eq!(hook.redacted(), "https://hooks.slack.com/…");
    let hook = Webhook::new("http://user:pw@127.0.0.1:8080/?k=v", Format::Json).unwrap();
    assert_eq!(hook.redacted(), "http://127.0.0.1:8080/…");
    let hook = Webhook::new("https://alerts.example/", Format::Json).unwrap();
    assert_eq!(hook.redacted(), "https://alerts.example/");
    assert!(!format!("{hook:?}").contains("s3cr3t"));
}

#[test]
fn scrubbing_removes_every_secret_part() {
    let hook = Webhook::new(
        "https://bob:pa55word@hooks.example/services/s3cr3tT0kenValue?token=querys3cret&x=1#fragm3nt",
        Format::Json,
    )
    .unwrap();
    let text = "error for https://bob:pa55word@hooks.example/services/s3cr3tT0kenValue?token=querys3cret&x=1#fragm3nt \
                (path /services/s3cr3tT0kenValue, token querys3cret, s3cr3tT0kenValue, pa55word, fragm3nt)";
    let clean = hook.scrub(text);
    for secret in ["s3cr3t", "querys3cret", "pa55word", "fragm3nt"] {
        assert!(!clean.contains(secret), "{secret}: {clean}");
    }
    assert!(clean.starts_with("error for …"), "{clean}");
    let hook = Webhook::new("https://ntfy.example/my%20topic%21x", Format::Json).unwrap();
    assert!(
        !hook
            .scrub("no topic my topic!x here")
            .contains("my topic!x")
    );
}

#[test]
fn slack_bodies_carry_text_and_the_fields() {
    let hook = Webhook::new(SLACK, Format::Slack).unwrap();
    let (url, body) = request(&hook, &alert()).unwrap();
    assert_eq!(url.as_str(), SLACK);
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("*kastell: kastell-backup-web-1.service failed on box*\nit failed"));
    assert!(text.contains("```\nline one\nline two\n```"), "{text}");
    assert_eq!(body["unit"], "kastell-backup-web-1.service");
    assert_eq!(body["host"], "box");
    assert_eq!(body["message"], "it failed");
    assert_eq!(body["kind"], "failure");
    assert!(body.get("journal").is_none());
}

#[test]
fn json_bodies_are_the_fields() {
    let hook = Webhook::new("https://alerts.example/in", Format::Json).unwrap();
    let (_, body) = request(&hook, &alert()).unwrap();
    assert_eq!(body["journal"], json!(["line one", "line two"]));
    assert!(body.get("text").is_none());
}

#[test]
fn ntfy_bodies_go_to_the_root_with_the_topic() {
    let hook = Webhook::new(
        "https://ntfy.example/base/alerts-k4stell?auth=abc",
        Format::Ntfy,
    )
    .unwrap();
    let (url, body) = request(&hook, &alert()).unwrap();
    assert_eq!(url.as_str(), "https://ntfy.example/base/?auth=abc");
    assert_eq!(body["topic"], "alerts-k4stell");
    assert_eq!(body["priority"], 4);
    assert_eq!(body["tags"], json!(["warning"]));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("line one\nline two")
    );
    let test = request(&hook, &Alert::test(None)).unwrap().1;
    assert_eq!(test["priority"], 3);
    let err = Webhook::new("https://ntfy.sh/", Format::Ntfy).unwrap_err();
    assert!(err.to_string().contains("topic"), "{err}");
}

#[test]
fn discord_bodies_are_content_without_mentions() {
    let hook = Webhook::new(
        "https://discord.com/api/webhooks/123456/d1sc0rdS3cret",
        Format::Discord,
    )
    .unwrap();
    let mut long = alert();
    long.message = "x".repeat(5000);
    let (url, body) = request(&hook, &alert()).unwrap();
    assert_eq!(url.path(), "/api/webhooks/123456/d1sc0rdS3cret");
    let content = body["content"].as_str().unwrap();
    assert!(
        content.starts_with("**kastell: kastell-backup-web-1.service failed on box**\nit failed")
    );
    assert!(content.ends_with("line one\nline two"), "{content}");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    let cut = request(&hook, &long).unwrap().1;
    assert_eq!(
        cut["content"].as_str().unwrap().chars().count(),
        DISCORD_MAX
    );
}

#[test]
fn telegram_sends_a_message_to_the_chat_through_the_bots_url() {
    let token = "bot123456:AAH-t0kenS3cret";
    let env = |chat: Option<&str>| {
        let mut pairs = vec![
            (WEBHOOK_VAR, format!("https://api.telegram.org/{token}")),
            (FORMAT_VAR, "telegram".to_owned()),
        ];
        pairs.extend(chat.map(|c| (TELEGRAM_CHAT_VAR, c.to_owned())));
        Env::from_pairs(pairs)
    };
    let hook = Webhook::from_env(&env(Some("-1001234567890"))).unwrap();
    let (url, body) = request(&hook, &alert()).unwrap();
    assert_eq!(
        url.as_str(),
        format!("https://api.telegram.org/{token}/sendMessage")
    );
    assert_eq!(body["chat_id"], "-1001234567890");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("kastell: kastell-backup-web-1.service failed on box\n\nit failed"));
    assert_eq!(body["disable_web_page_preview"], true);
    // The token is a secret: neither shown nor in Debug.
    assert_eq!(hook.redacted(), "https://api.telegram.org/…");
    assert!(!format!("{hook:?}").contains("t0kenS3cret"));
    // A URL that already names sendMessage is kept as it is.
    let given = Webhook::new(
        &format!("https://api.telegram.org/{token}/sendMessage"),
        Format::Telegram,
    )
    .unwrap()
    .with_chat("@kastell_alerts")
    .unwrap();
    assert_eq!(request(&given, &alert()).unwrap().0, url);
    // No chat, a bad chat, or a URL without the bot token: refused, the
    // token never quoted.
    for (bad, words) in [
        (
            Webhook::from_env(&env(None)).unwrap_err(),
            TELEGRAM_CHAT_VAR,
        ),
        (
            Webhook::from_env(&env(Some("my chat"))).unwrap_err(),
            "not a Telegram chat",
        ),
        (
            Webhook::new("https://api.telegram.org/sendMessage", Format::Telegram).unwrap_err(),
            "bot's API URL",
        ),
    ] {
        assert!(bad.to_string().contains(words), "{bad}");
        assert!(!bad.to_string().contains("t0kenS3cret"), "{bad}");
    }
}

#[test]
fn failure_alerts_name_the_unit_and_its_job() {
    let alert = Alert::failure("kastell-drill-web-1.service", None, Vec::new()).unwrap();
    assert!(
        alert
            .message
            .contains("kastell-drill-web-1.service (the restore drill of web-1) failed"),
        "{}",
        alert.message
    );
    assert_eq!(alert.kind, AlertKind::Failure);
    let alert = Alert::failure("x.service", Some(&"m".repeat(5000)), Vec::new()).unwrap();
    assert!(alert.message.chars().count() <= MESSAGE_MAX + 1);
    for bad in ["", "-x", "a b", "a\nb"] {
        assert!(Alert::failure(bad, None, Vec::new()).is_err(), "{bad:?}");
    }
    assert_eq!(
        job_of("kastell-fleet-backup.service").as_deref(),
        Some("the backup of every server")
    );
    assert_eq!(
        job_of("kastell-prune-offsite.service").as_deref(),
        Some("the prune of repository offsite")
    );
    assert_eq!(job_of("other.service"), None);
}

#[test]
fn percent_decoding_is_strict() {
    assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
    assert_eq!(percent_decode("plain"), None);
    assert_eq!(percent_decode("bad%zz"), None);
    assert_eq!(percent_decode("end%2"), Some("end%2".to_owned()));
}

#[test]
fn a_missing_journal_is_no_lines() {
    // Whatever journalctl says here (no journal in a container), the
    // answer is a list, and a bad name never reaches it.
    let _ = journal_tail("kastell-no-such-unit.service", false);
    assert!(journal_tail("--help", false).is_empty());
}
