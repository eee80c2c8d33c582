//! The failure webhook: one JSON POST to `KASTELL_ALERT_WEBHOOK`.
//!
//! The URL usually is the secret (a Slack webhook's path, an ntfy topic, a
//! `?token=`), so it is never shown: messages name only its scheme, host
//! and port ([`Webhook::redacted`]), and every text that could echo it (a
//! transport error, the receiver's answer) has its path, query and
//! credentials cut out first.
//!
//! `KASTELL_ALERT_FORMAT` picks the body:
//!
//! - `slack` (default): `{"text": ..., "title", "message", "unit", "host",
//!   "time"}`. Slack, Mattermost and Rocket.Chat incoming webhooks show
//!   `text`; other receivers get the fields.
//! - `ntfy`: ntfy's JSON publishing: `KASTELL_ALERT_WEBHOOK` is the topic
//!   URL (`https://ntfy.sh/mytopic`), and kastell POSTs `{"topic",
//!   "title", "message", "priority", "tags"}` to the server's root, as ntfy
//!   requires for a JSON body.
//! - `json`: the fields alone, the journal lines as an array.
//! - `discord`: a Discord webhook's `{"content": ...}` (title, message and
//!   journal, cut to Discord's 2000 characters; mentions disabled, so a
//!   journal line cannot ping `@everyone`).
//! - `telegram`: the Bot API's `sendMessage`. `KASTELL_ALERT_WEBHOOK` is
//!   `https://api.telegram.org/bot<TOKEN>` (the bot token is in the path,
//!   so it is a secret like any webhook path; `/sendMessage` is added
//!   when missing) and the chat comes from `KASTELL_ALERT_TELEGRAM_CHAT`
//!   (a numeric chat id or `@channelname`). The text is cut to Telegram's
//!   4096 characters.

use std::time::Duration;

use kastell_core::{Error, ErrorKind, Result};
use reqwest::Url;
use serde::Serialize;
use serde_json::{Value, json};

use crate::env::Env;

/// The variable holding the webhook URL.
pub(crate) const WEBHOOK_VAR: &str = "KASTELL_ALERT_WEBHOOK";
/// The variable choosing the body's format.
pub(crate) const FORMAT_VAR: &str = "KASTELL_ALERT_FORMAT";
/// How long one POST may take, connection included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
/// The variable holding the Telegram chat (`telegram` format only).
pub(crate) const TELEGRAM_CHAT_VAR: &str = "KASTELL_ALERT_TELEGRAM_CHAT";
/// The longest Discord message (`content`).
const DISCORD_MAX: usize = 2000;
/// The longest Telegram message (`text`).
const TELEGRAM_MAX: usize = 4096;
/// The formats, as `KASTELL_ALERT_FORMAT` names them.
const FORMAT_NAMES: &str = "slack (the default), ntfy, json, discord or telegram";
/// How many journal lines an alert carries.
pub(crate) const JOURNAL_LINES: usize = 20;
/// The longest journal line kept (longer ones are cut).
const LINE_MAX: usize = 300;
/// The longest message kept (ntfy turns bodies over 4 KiB into files).
const MESSAGE_MAX: usize = 2000;

/// The shape of the POSTed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// `{"text": ...}` and the fields.
    Slack,
    /// ntfy's JSON publishing, to the server root.
    Ntfy,
    /// The fields alone.
    Json,
    /// A Discord webhook's `content`.
    Discord,
    /// The Telegram Bot API's `sendMessage`.
    Telegram,
}

impl Format {
    /// The format `KASTELL_ALERT_FORMAT` names (unset or empty: Slack).
    /// Refuses any other word, naming the three.
    pub(crate) fn from_env(env: &Env) -> Result<Self> {
        match env
            .get_nonempty(FORMAT_VAR)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("slack") => Ok(Self::Slack),
            Some("ntfy") => Ok(Self::Ntfy),
            Some("json") => Ok(Self::Json),
            Some("discord") => Ok(Self::Discord),
            Some("telegram") => Ok(Self::Telegram),
            Some(other) => Err(Error::config_invalid(format!(
                "{FORMAT_VAR}={} is not a known alert format",
                crate::state::store::shown(other)
            ))
            .with_hint(format!("Set {FORMAT_VAR} to {FORMAT_NAMES}"))),
        }
    }
}

/// Where alerts go: a checked http(s) URL and a body format.
#[derive(Clone)]
pub(crate) struct Webhook {
    url: Url,
    format: Format,
    /// The Telegram chat (`telegram` format only).
    chat: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.redacted())
            .field("format", &self.format)
            .field("chat", &self.chat)
            .finish()
    }
}

impl Webhook {
    /// The webhook `KASTELL_ALERT_WEBHOOK` and `KASTELL_ALERT_FORMAT` name.
    /// Refuses, without ever showing the value, when the URL is unset, does
    /// not parse, is not http or https or has no host; and, for ntfy, when
    /// it names no topic.
    pub(crate) fn from_env(env: &Env) -> Result<Self> {
        let raw = env.get_nonempty(WEBHOOK_VAR).ok_or_else(|| {
            Error::config_invalid(format!("{WEBHOOK_VAR} is not set: there is nowhere to send alerts"))
                .with_hint(format!(
                    "Put {WEBHOOK_VAR}=https://... in the file given to `kastell schedule install --env-file` (mode 0600), or export it"
                ))
        })?;
        let webhook = Self::new(&raw, Format::from_env(env)?)?;
        if webhook.format != Format::Telegram {
            return Ok(webhook);
        }
        let chat = env.get_nonempty(TELEGRAM_CHAT_VAR).ok_or_else(|| {
            Error::config_invalid(format!(
                "with {FORMAT_VAR}=telegram, {TELEGRAM_CHAT_VAR} must name the chat"
            ))
            .with_hint(format!(
                "Set {TELEGRAM_CHAT_VAR} to the chat's numeric id (as getUpdates shows it) or @channelname"
            ))
        })?;
        webhook.with_chat(chat.trim())
    }

    /// This Telegram webhook sending to `chat`: a numeric chat id (negative
    /// for groups) or `@channelname`. Refuses anything else.
    pub(crate) fn with_chat(mut self, chat: &str) -> Result<Self> {
        let digits = chat.strip_prefix('-').unwrap_or(chat);
        let numeric = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
        let channel = chat.strip_prefix('@').is_some_and(|name| {
            (5..=32).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !(numeric || channel) {
            return Err(Error::config_invalid(format!(
                "{TELEGRAM_CHAT_VAR}={} is not a Telegram chat",
                crate::state::store::shown(chat)
            ))
            .with_hint("Use the chat's numeric id (such as -1001234567890) or @channelname"));
        }
        self.chat = Some(chat.to_owned());
        Ok(self)
    }

    /// A webhook for `raw` in `format`. Refuses as [`Webhook::from_env`]
    /// does, never quoting `raw`.
    pub(crate) fn new(raw: &str, format: Format) -> Result<Self> {
        let url = Url::parse(raw).map_err(|e| {
            Error::config_invalid(format!("{WEBHOOK_VAR} is not a valid URL ({e})"))
                .with_hint("Use the full URL, such as https://hooks.slack.com/services/... or https://ntfy.sh/your-topic")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config_invalid(format!(
                "{WEBHOOK_VAR} must be an http:// or https:// URL"
            ))
            .with_hint("Use the webhook's https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config_invalid(format!("{WEBHOOK_VAR} has no host")));
        }
        let webhook = Self {
            url,
            format,
            chat: None,
        };
        match format {
            Format::Ntfy => {
                webhook.ntfy_target()?;
            }
            Format::Telegram => {
                webhook.telegram_target()?;
            }
            Format::Slack | Format::Json | Format::Discord => {}
        }
        Ok(webhook)
    }

    /// The URL as it may be shown: scheme, host and port, and `/…` when it
    /// has a path, query or credentials (which are never shown).
    pub(crate) fn redacted(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let hidden = self.url.path() != "/"
            || self.url.query().is_some()
            || self.url.fragment().is_some()
            || !self.url.username().is_empty()
            || self.url.password().is_some();
        format!(
            "{}://{host}{port}{}",
            self.url.scheme(),
            if hidden { "/…" } else { "/" }
        )
    }

    /// `text` with every secret part of the URL cut out: the whole URL,
    /// its path, query and fragment, its credentials, and each path segment
    /// or query value of six characters or more.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let url = &self.url;
        let mut secrets: Vec<String> = vec![url.as_str().to_owned()];
        if url.path() != "/" {
            secrets.push(url.path().to_owned());
        }
        secrets.extend(url.query().map(str::to_owned));
        secrets.extend(url.fragment().map(str::to_owned));
        secrets.extend(url.password().map(str::to_owned));
        if !url.username().is_empty() {
            secrets.push(url.username().to_owned());
        }
        if let Some(segments) = url.path_segments() {
            secrets.extend(segments.map(str::to_owned));
        }
        for (key, value) in url.query_pairs() {
            secrets.push(key.into_owned());
            secrets.push(value.into_owned());
        }
        let decoded: Vec<String> = secrets
            .iter()
            .filter_map(|s| percent_decode(s).filter(|d| d != s))
            .collect();
        secrets.extend(decoded);
        secrets.retain(|s| s.chars().count() >= 6);
        // Longest first, so a segment never leaves half of the path behind.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for secret in &secrets {
            out = out.replace(secret.as_str(), "…");
        }
        out
    }

    /// For ntfy: the server root to POST to and the topic (the URL's last
    /// path segment). Refuses a URL without a topic.
    fn ntfy_target(&self) -> Result<(Url, String)> {
        let mut segments: Vec<String> = self
            .url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let Some(topic) = segments.pop() else {
            return Err(Error::config_invalid(format!(
                "with {FORMAT_VAR}=ntfy, {WEBHOOK_VAR} must be the topic's URL"
            ))
            .with_hint("Use https://ntfy.sh/your-topic (or your server's URL and topic)"));
        };
        let mut root = self.url.clone();
        let prefix: String = segments.iter().map(|s| format!("{s}/")).collect();
        root.set_path(&format!("/{prefix}"));
        Ok((root, topic))
    }
}

impl Webhook {
    /// For Telegram: the bot's `sendMessage` URL (`/sendMessage` added to
    /// `https://api.telegram.org/bot<TOKEN>` when missing). Refuses a URL
    /// whose path does not start with a `bot<TOKEN>` segment.
    fn telegram_target(&self) -> Result<Url> {
        let segments: Vec<&str> = self
            .url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let bot = segments
            .iter()
            .position(|s| s.strip_prefix("bot").is_some_and(|t| !t.is_empty()));
        let Some(bot) = bot else {
            return Err(Error::config_invalid(format!(
                "with {FORMAT_VAR}=telegram, {WEBHOOK_VAR} must be the bot's API URL"
            ))
            .with_hint("Use https://api.telegram.org/bot<TOKEN> (the token @BotFather gave)"));
        };
        let mut url = self.url.clone();
        if segments.get(bot + 1) != Some(&"sendMessage") {
            let path: String = segments
                .iter()
                .take(bot + 1)
                .map(|s| format!("/{s}"))
                .collect();
            url.set_path(&format!("{path}/sendMessage"));
        }
        Ok(url)
    }
}

/// Decodes `%XX` escapes, when `text` has any and they decode to UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AlertKind {
    /// A scheduled job failed.
    Failure,
    /// `kastell alert test`.
    Test,
    /// `kastell backup freshness` found servers whose newest backup in
    /// the repository is too old.
    Stale,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Alert {
    /// Failure or test.
    pub kind: AlertKind,
    /// One line.
    pub title: String,
    /// What happened.
    pub message: String,
    /// The systemd unit that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// This machine's host name.
    pub host: String,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The unit's last journal lines, oldest first (may be empty).
    pub journal: Vec<String>,
}

/// Refuses a unit name that is empty, longer than systemd allows, starts
/// with `-` or holds a control character.
pub(crate) fn check_unit_name(unit: &str) -> Result<()> {
    let bad = unit.is_empty()
        || unit.len() > super::unit::UNIT_NAME_MAX
        || unit.starts_with('-')
        || unit.chars().any(|c| c.is_control() || c.is_whitespace());
    if bad {
        return Err(Error::invalid_input(format!(
            "{} is not a systemd unit name",
            crate::state::store::shown(unit)
        ))
        .with_hint("Pass the failed unit's name, such as kastell-backup-web-1.service"));
    }
    Ok(())
}

/// What a kastell unit name says its job was, for the alert's words.
fn job_of(unit: &str) -> Option<String> {
    let stem = unit.strip_suffix(".service").unwrap_or(unit);
    if stem == "kastell-fleet-backup" {
        return Some("the backup of every server".to_owned());
    }
    [
        ("kastell-backup-", "the backup of "),
        ("kastell-drill-", "the restore drill of "),
        ("kastell-prune-", "the prune of repository "),
    ]
    .iter()
    .find_map(|(prefix, words)| {
        stem.strip_prefix(prefix)
            .map(|rest| format!("{words}{rest}"))
    })
}

fn cut(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

impl Alert {
    /// The alert for a failed `unit` on this machine, with `message` (or a
    /// default one) and `journal`. Refuses a bad unit name.
    pub(crate) fn failure(unit: &str, message: Option<&str>, journal: Vec<String>) -> Result<Self> {
        check_unit_name(unit)?;
        let host = crate::state::store::hostname();
        let time = chrono::Utc::now();
        let what = job_of(unit).map(|j| format!(" ({j})")).unwrap_or_default();
        let message = match message {
            Some(m) => cut(m, MESSAGE_MAX),
            None => format!(
                "The systemd unit {unit}{what} failed on {host} at {}. See `journalctl --unit {unit}` there.",
                time.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        };
        Ok(Self {
            kind: AlertKind::Failure,
            title: format!("kastell: {unit} failed on {host}"),
            message,
            unit: Some(unit.to_owned()),
            host,
            time: time.to_rfc3339(),
            journal,
        })
    }

    /// The alert `kastell alert test` sends.
    pub(crate) fn test(message: Option<&str>) -> Self {
        let host = crate::state::store::hostname();
        Self {
            kind: AlertKind::Test,
            title: format!("kastell: test alert from {host}"),
            message: message.map_or_else(
                || format!("This is a test: failures of kastell's scheduled jobs on {host} will be reported here."),
                |m| cut(m, MESSAGE_MAX),
            ),
            unit: None,
            host,
            time: chrono::Utc::now().to_rfc3339(),
            journal: Vec::new(),
        }
    }

    /// The alert `kastell backup freshness` sends: `stale` lists one line
    /// per server whose newest backup is too old (or missing).
    pub(crate) fn stale(max_age: &str, stale: &[String]) -> Self {
        let host = crate::state::store::hostname();
        Self {
            kind: AlertKind::Stale,
            title: format!(
                "kastell: {} server(s) without a backup newer than {max_age}",
                stale.len()
            ),
            message: cut(
                &format!(
                    "Checked from {host} in the repository itself:\n{}",
                    stale.join("\n")
                ),
                MESSAGE_MAX,
            ),
            unit: None,
            host,
            time: chrono::Utc::now().to_rfc3339(),
            journal: Vec::new(),
        }
    }

    /// The message with the journal lines under it.
    fn text_with_journal(&self) -> String {
        if self.journal.is_empty() {
            return self.message.clone();
        }
        format!(
            "{}\n\nLast journal lines:\n{}",
            self.message,
            self.journal.join("\n")
        )
    }
}

/// The URL to POST to and the body, for `alert` in `webhook`'s format.
pub(crate) fn request(webhook: &Webhook, alert: &Alert) -> Result<(Url, Value)> {
    let fields = serde_json::to_value(alert)
        .map_err(|e| Error::unexpected(format!("encoding the alert: {e}")))?;
    match webhook.format {
        Format::Json => Ok((webhook.url.clone(), fields)),
        Format::Slack => {
            let mut body = fields;
            let journal = if alert.journal.is_empty() {
                String::new()
            } else {
                format!("\n```\n{}\n```", alert.journal.join("\n"))
            };
            let text = format!("*{}*\n{}{journal}", alert.title, alert.message);
            if let Value::Object(map) = &mut body {
                map.remove("journal");
                map.insert("text".to_owned(), Value::String(text));
            }
            Ok((webhook.url.clone(), body))
        }
        Format::Ntfy => {
            let (root, topic) = webhook.ntfy_target()?;
            let (priority, tags) = match alert.kind {
                AlertKind::Failure | AlertKind::Stale => (4, vec!["warning"]),
                AlertKind::Test => (3, vec!["white_check_mark"]),
            };
            let body = json!({
                "topic": topic,
                "title": alert.title,
                "message": alert.text_with_journal(),
                "priority": priority,
                "tags": tags,
            });
            Ok((root, body))
        }
        Format::Discord => {
            let text = format!("**{}**\n{}", alert.title, alert.text_with_journal());
            let body = json!({
                "content": cut(&text, DISCORD_MAX - 1),
                "username": "kastell",
                "allowed_mentions": {"parse": []},
            });
            Ok((webhook.url.clone(), body))
        }
        Format::Telegram => {
            let Some(chat) = &webhook.chat else {
                return Err(Error::config_invalid(format!(
                    "with {FORMAT_VAR}=telegram, {TELEGRAM_CHAT_VAR} must name the chat"
                )));
            };
            let text = format!("{}\n\n{}", alert.title, alert.text_with_journal());
            let body = json!({
                "chat_id": chat,
                "text": cut(&text, TELEGRAM_MAX - 1),
                "disable_web_page_preview": true,
            });
            Ok((webhook.telegram_target()?, body))
        }
    }
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Delivery {
    /// Where it went, redacted ([`Webhook::redacted`]).
    pub to: String,
    /// The body format.
    pub format: Format,
    /// The HTTP status (2xx).
    pub status: u16,
}

/// The text of a transport error and its causes, without the URL.
fn transport_text(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// POSTs `alert` to `webhook` (one attempt, [`TIMEOUT`], no redirects).
/// Refuses, naming only the redacted URL, when the request cannot be sent
/// or the answer is not 2xx (with its status and a scrubbed excerpt of its
/// body).
pub(crate) async fn send(webhook: &Webhook, alert: &Alert) -> Result<Delivery> {
    let (url, body) = request(webhook, alert)?;
    // One process-wide TLS provider; a second install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kastell/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::unexpected(format!(
                "cannot build the HTTP client: {}",
                transport_text(e)
            ))
        })?;
    let shown = webhook.redacted();
    let answer = client.post(url).json(&body).send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Unavailable
        };
        Error::new(
            kind,
            format!(
                "sending the alert to {shown} failed: {}",
                webhook.scrub(&transport_text(e))
            ),
        )
        .with_hint(format!(
            "Check that {WEBHOOK_VAR} is right and that this machine reaches it"
        ))
    })?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        let excerpt: String = cut(text.trim(), 200)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let excerpt = webhook.scrub(&excerpt);
        let kind = match status.as_u16() {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            404 | 410 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Unexpected,
        };
        let said = if excerpt.is_empty() {
            String::new()
        } else {
            format!(": {excerpt}")
        };
        return Err(Error::new(
            kind,
            format!("the alert webhook {shown} answered {status}{said}"),
        )
        .with_hint(format!(
            "Check {WEBHOOK_VAR} (and {FORMAT_VAR}: {FORMAT_NAMES}) against what the receiver expects, then run `kastell alert test`"
        )));
    }
    Ok(Delivery {
        to: shown,
        format: webhook.format,
        status: status.as_u16(),
    })
}

/// The last [`JOURNAL_LINES`] lines of `unit`'s journal
/// (`journalctl --user-unit` when `user`), each cut to a few hundred
/// characters. Empty, silently, when journalctl is missing, fails, finds
/// nothing or takes more than five seconds.
pub(crate) fn journal_tail(unit: &str, user: bool) -> Vec<String> {
    if check_unit_name(unit).is_err() {
        return Vec::new();
    }
    let mut cmd = kastell_core::env::scrubbed_command("journalctl");
    cmd.arg(if user {
        format!("--user-unit={unit}")
    } else {
        format!("--unit={unit}")
    })
    .args([
        "-n",
        &JOURNAL_LINES.to_string(),
        "--no-pager",
        "-o",
        "short-iso",
        "-q",
    ]);
    let Ok(Some(done)) = super::analyze::run_bounded(cmd, Duration::from_secs(5)) else {
        return Vec::new();
    };
    if !done.status.success() {
        return Vec::new();
    }
    let lines: Vec<String> = done
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("-- "))
        .map(|line| {
            cut(line, LINE_MAX)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        })
        .collect();
    let skip = lines.len().saturating_sub(JOURNAL_LINES);
    lines.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests;
