//! `kastell alert` through the real binary: an alert reaches a real HTTP
//! listener on loopback (Slack-style, ntfy, Discord and Telegram bodies),
//! the alert unit's command runs as written, and a refusing or unreachable
//! receiver gives an error that never shows the URL's secret parts. The
//! listener is shared with the tests of scheduled checks that alert.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::schedule::{
    PATH_SECRET, QUERY_SECRET, both, failed, fleet_of_one, lines_of, ok, private_file, run, text,
};
use crate::support::kastell;

/// One request the listener received.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

/// A one-connection-at-a-time HTTP/1.1 listener on loopback that answers
/// every request with `status` and `answer` (where `{target}` is replaced
/// by the request target, as a careless receiver echoing the URL would),
/// and hands what it received to the test.
pub(crate) fn listener(status: u16, answer: &'static str) -> (u16, mpsc::Receiver<Received>) {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in socket.incoming() {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "content-type" => content_type = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let reply = answer.replace("{target}", &target);
            let reason = if status == 200 { "OK" } else { "Refused" };
            write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
            stream.flush().unwrap();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if tx
                .send(Received {
                    method,
                    target,
                    content_type,
                    body,
                })
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

fn alert(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = kastell(home, args);
    cmd.envs(vars.iter().copied());
    cmd.output().unwrap()
}

fn no_secret(out: &Output) {
    let all = both(out);
    assert!(!all.contains(PATH_SECRET), "{all}");
    assert!(!all.contains(QUERY_SECRET), "{all}");
}

#[test]
fn alerts_reach_a_real_listener_as_slack_and_ntfy_bodies() {
    let home = tempfile::tempdir().unwrap();
    let (port, received) = listener(200, "ok");
    let url = format!("http://127.0.0.1:{port}/hooks/{PATH_SECRET}?key={QUERY_SECRET}");
    let out = alert(
        home.path(),
        &[("KASTELL_ALERT_WEBHOOK", &url)],
        &[
            "--json",
            "alert",
            "send",
            "--unit",
            "kastell-backup-web-1.service",
        ],
    );
    let delivery = ok(&out);
    no_secret(&out);
    assert_eq!(delivery["status"], 200);
    assert_eq!(delivery["format"], "slack");
    assert_eq!(delivery["to"], format!("http://127.0.0.1:{port}/…"));
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.target,
        format!("/hooks/{PATH_SECRET}?key={QUERY_SECRET}")
    );
    assert!(got.content_type.starts_with("application/json"), "{got:?}");
    let said = got.body["text"].as_str().unwrap();
    assert!(
        said.contains("kastell-backup-web-1.service failed"),
        "{said}"
    );
    assert!(said.contains("the backup of web-1"), "{said}");
    assert_eq!(got.body["unit"], "kastell-backup-web-1.service");
    assert_eq!(got.body["kind"], "failure");
    assert!(got.body["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(got.body["title"].as_str().unwrap().starts_with("kastell: "));
    assert!(got.body["message"].as_str().is_some());

    // ntfy: the topic URL is given, the JSON goes to the root with the topic.
    let topic = format!("kastell-{PATH_SECRET}");
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "ntfy"),
        ],
        &[
            "alert",
            "send",
            "--unit",
            "kastell-drill-web-1.service",
            "--message",
            "the drill found no backup",
            "--no-journal",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    no_secret(&out);
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.target, "/");
    assert_eq!(got.body["topic"], topic.as_str());
    assert_eq!(got.body["message"], "the drill found no backup");
    assert_eq!(got.body["priority"], 4);
    assert!(
        got.body["title"]
            .as_str()
            .unwrap()
            .contains("kastell-drill-web-1.service")
    );

    // `alert test`, plain JSON.
    let url = format!("http://127.0.0.1:{port}/in");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "json"),
        ],
        &["alert", "test"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stdout).contains("Sent a test alert"),
        "{}",
        both(&out)
    );
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.body["kind"], "test");
    assert!(got.body.get("text").is_none());
}

#[test]
fn the_alert_unit_command_runs_as_written() {
    // What systemd would run for a failed backup: the template's
    // ExecStart with %i filled in and the environment file's variables.
    let tmp = fleet_of_one();
    let home = tmp.path();
    let (port, received) = listener(200, "ok");
    let env_file = home.join("kastell.env");
    private_file(
        &env_file,
        &format!("KASTELL_ALERT_WEBHOOK=http://127.0.0.1:{port}/hooks/{PATH_SECRET}\n"),
    );
    let units = home.join("units");
    ok(&run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            units.to_str().unwrap(),
            "--server",
            "web-1",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
    ));
    let template = lines_of(&units.join("kastell-alert@.service"));
    let exec = template
        .iter()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.replace("%i", "kastell-backup-web-1.service"))
        .collect();
    let out = Command::new(&words[0])
        .args(&words[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KASTELL_DIR", home.join("state"))
        .env(
            "KASTELL_ALERT_WEBHOOK",
            format!("http://127.0.0.1:{port}/hooks/{PATH_SECRET}"),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    no_secret(&out);
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.body["unit"], "kastell-backup-web-1.service");
}

#[test]
fn a_refusing_or_unreachable_webhook_is_an_error_without_its_secret() {
    let home = tempfile::tempdir().unwrap();
    let (port, received) = listener(403, "forbidden: no hook at {target}");
    let url = format!("http://127.0.0.1:{port}/hooks/{PATH_SECRET}?key={QUERY_SECRET}");
    let vars = [("KASTELL_ALERT_WEBHOOK", url.as_str())];
    let out = alert(
        home.path(),
        &vars,
        &[
            "alert",
            "send",
            "--unit",
            "kastell-backup-web-1.service",
            "--no-journal",
        ],
    );
    failed(&out);
    no_secret(&out);
    let err = text(&out.stderr);
    assert!(err.contains("403"), "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{port}/…")), "{err}");
    assert!(err.contains("forbidden: no hook at …"), "{err}");
    received.recv_timeout(Duration::from_secs(10)).unwrap();

    let out = alert(home.path(), &vars, &["--json", "alert", "test"]);
    failed(&out);
    no_secret(&out);
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["kind"], "permission_denied");
    assert!(err["error"].as_str().unwrap().contains("403"));
    received.recv_timeout(Duration::from_secs(10)).unwrap();

    // Not http(s): refused before any request, the value never shown.
    for bad in [
        format!("ftp://127.0.0.1:{port}/{PATH_SECRET}"),
        format!("file:///{PATH_SECRET}"),
        format!("not a url {PATH_SECRET}"),
    ] {
        let out = alert(
            home.path(),
            &[("KASTELL_ALERT_WEBHOOK", bad.as_str())],
            &["alert", "test"],
        );
        failed(&out);
        no_secret(&out);
        assert!(
            text(&out.stderr).contains("KASTELL_ALERT_WEBHOOK"),
            "{}",
            both(&out)
        );
    }
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());

    // Nobody listening: a transport error, still without the secret.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{closed_port}/hooks/{PATH_SECRET}?key={QUERY_SECRET}");
    let out = alert(
        home.path(),
        &[("KASTELL_ALERT_WEBHOOK", url.as_str())],
        &["alert", "test"],
    );
    failed(&out);
    no_secret(&out);
    assert!(
        text(&out.stderr).contains("sending the alert"),
        "{}",
        both(&out)
    );

    // No webhook at all.
    let out = alert(home.path(), &[], &["alert", "send", "--unit", "x.service"]);
    failed(&out);
    assert!(text(&out.stderr).contains("KASTELL_ALERT_WEBHOOK is not set"));
}

#[test]
fn alerts_reach_a_real_listener_as_discord_and_telegram_bodies() {
    let home = tempfile::tempdir().unwrap();
    let (port, received) = listener(200, "{\"ok\":true}");

    // Discord: the webhook URL as Discord gives it, `content` in the body.
    let url = format!("http://127.0.0.1:{port}/api/webhooks/42/{PATH_SECRET}");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "discord"),
        ],
        &[
            "--json",
            "alert",
            "send",
            "--unit",
            "kastell-backup-web-1.service",
            "--no-journal",
        ],
    );
    let delivery = ok(&out);
    no_secret(&out);
    assert_eq!(delivery["format"], "discord");
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.target, format!("/api/webhooks/42/{PATH_SECRET}"));
    let content = got.body["content"].as_str().unwrap();
    assert!(
        content.starts_with("**kastell: kastell-backup-web-1.service failed on "),
        "{content}"
    );
    assert!(content.contains("the backup of web-1"), "{content}");
    assert_eq!(got.body["allowed_mentions"]["parse"], serde_json::json!([]));

    // Telegram: the bot's URL (token in the path), the chat from its
    // variable, POSTed to sendMessage.
    let url = format!("http://127.0.0.1:{port}/bot12345:{PATH_SECRET}");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "telegram"),
            ("KASTELL_ALERT_TELEGRAM_CHAT", "-1001234567890"),
        ],
        &["alert", "test", "--message", "hello from the test"],
    );
    assert!(out.status.success(), "{}", both(&out));
    no_secret(&out);
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.target, format!("/bot12345:{PATH_SECRET}/sendMessage"));
    assert_eq!(got.body["chat_id"], "-1001234567890");
    let said = got.body["text"].as_str().unwrap();
    assert!(said.starts_with("kastell: test alert from "), "{said}");
    assert!(said.ends_with("hello from the test"), "{said}");

    // Without the chat: refused before anything is sent.
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "telegram"),
        ],
        &["alert", "test"],
    );
    failed(&out);
    no_secret(&out);
    assert!(
        text(&out.stderr).contains("KASTELL_ALERT_TELEGRAM_CHAT"),
        "{}",
        both(&out)
    );
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
}
