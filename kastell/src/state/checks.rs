//! `checks.json`: what a maintenance proves after an update besides the
//! platform's own health check, and what it does when that fails.
//!
//! ```json
//! {
//!   "fleet":   {"rollback": "ask"},
//!   "tags":    {"prod": {"rollback": "auto",
//!                        "http": [{"url": "https://shop.example.com/health", "status": 200}]}},
//!   "servers": {"web-1": {"commands": ["systemctl is-active --quiet nginx"]}}
//! }
//! ```
//!
//! A server gets every check of the fleet entry, of each of its tags and of
//! its own entry (each check once). Its rollback policy is its own entry's,
//! else the most careful among its tags' (`never` before `ask` before
//! `auto`), else the fleet's, else [`RollbackPolicy::Ask`]. This module alone
//! reads and writes the file; a file that is not valid JSON of this shape,
//! or holds a check that could never pass or could be misread, is refused
//! with where it is wrong, so a typo never silently drops a check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::state::platform_health::PlatformHealth;
use crate::state::store::{ServerRecord, display_safe, read_regular, write_atomic};

/// The file's name in the kastell directory.
pub const CHECKS_FILE: &str = "checks.json";

/// The longest command a check may run.
const MAX_COMMAND: usize = 1000;
/// The longest URL a check may ask.
const MAX_URL: usize = 2000;

/// What a maintenance does when the health after an update fails and a
/// snapshot was taken before it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RollbackPolicy {
    /// Report the failure and leave the server as it is.
    Never,
    /// Ask a person (the CLI in a terminal); unasked (MCP, scripts), leave
    /// the server and suggest the restore, which is confirmed as any
    /// restore is. The default: a rollback loses every write since the
    /// snapshot, which only a person can weigh on a stateful host.
    #[default]
    Ask,
    /// Restore the snapshot, prove the boot and check the health again.
    Auto,
}

impl RollbackPolicy {
    /// The word in `checks.json` and on the command line.
    pub fn word(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Ask => "ask",
            Self::Auto => "auto",
        }
    }
}

/// An HTTP check: `url` must answer `status` (no redirect is followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// `http://` or `https://` URL, asked from this machine.
    pub url: String,
    /// The status it must answer (default 200).
    #[serde(default = "ok_status")]
    pub status: u16,
}

fn ok_status() -> u16 {
    200
}

impl HttpCheck {
    /// The URL without credentials, query or fragment (which may carry a
    /// secret), for results and logs.
    pub fn shown(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(url) => {
                let host = url.host_str().unwrap_or("?");
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                let hidden = if url.query().is_some() { "?…" } else { "" };
                format!("{}://{host}{port}{}{hidden}", url.scheme(), url.path())
            }
            Err(_) => "(invalid URL)".to_owned(),
        }
    }
}

/// One entry: the fleet's, a tag's or a server's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckEntry {
    /// The rollback policy this entry sets, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackPolicy>,
    /// HTTP checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpCheck>,
    /// Commands run on the server (as the SSH user, with `sh -c`) that
    /// must exit 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Seconds the checks may take to pass after an update or a rollback
    /// (1-3600; default: the platform health wait, 120 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u64>,
    /// The platform's own health check ([`PlatformHealth`]).
    #[serde(default, skip_serializing_if = "PlatformHealth::is_empty")]
    pub platform: PlatformHealth,
}

impl CheckEntry {
    /// Whether it sets nothing.
    pub fn is_empty(&self) -> bool {
        self.rollback.is_none()
            && self.http.is_empty()
            && self.commands.is_empty()
            && self.wait.is_none()
            && self.platform.is_empty()
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksFile {
    /// What applies to every server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<CheckEntry>,
    /// Entries by tag.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, CheckEntry>,
    /// Entries by server name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, CheckEntry>,
}

/// Which entry an operator edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The fleet entry.
    Fleet,
    /// A tag's.
    Tag(String),
    /// A server's, by name.
    Server(String),
}

impl Scope {
    /// `fleet`, `tag prod`, `server web-1`.
    pub fn describe(&self) -> String {
        match self {
            Self::Fleet => "fleet".to_owned(),
            Self::Tag(t) => format!("tag {t}"),
            Self::Server(s) => format!("server {s}"),
        }
    }
}

/// What one server must pass after an update, and its rollback policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Declared {
    /// The policy.
    pub rollback: RollbackPolicy,
    /// Where it was set (`server web-1`, `tag prod`, `fleet`, `default`).
    pub rollback_from: String,
    /// HTTP checks.
    pub http: Vec<HttpCheck>,
    /// Commands that must exit 0.
    pub commands: Vec<String>,
    /// Seconds the checks may take to pass: the server's own entry's, else
    /// the longest of its tags' and the fleet's (`None`: the platform
    /// health wait).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_secs: Option<u64>,
    /// The platform's own health check: each setting the server's own
    /// entry's, else its first tag's that sets it, else the fleet's.
    #[serde(skip_serializing_if = "PlatformHealth::is_empty")]
    pub platform: PlatformHealth,
}

impl Declared {
    /// Whether there is no check to run.
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.commands.is_empty()
    }
}

impl ChecksFile {
    /// The path of the file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CHECKS_FILE)
    }

    /// Reads `dir`'s file (none: empty). Refuses a file that is not a
    /// regular file, not valid JSON of the documented shape (naming line
    /// and column) or that holds an invalid check (naming it).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let Some(bytes) = read_regular(&path)? else {
            return Ok(Self::default());
        };
        let file: Self = serde_json::from_slice(&bytes).map_err(|e| {
            Error::config_invalid(format!("{}: {e}", path.display())).with_hint(
                "Fix it by hand or with `kastell server checks set`; see README's \
                 \"Maintenance with rollback\"",
            )
        })?;
        file.validate().map_err(|e| {
            let message = format!("{}: {}", path.display(), e.message());
            e.with_message(message)
        })?;
        Ok(file)
    }

    /// Writes the file into `dir` atomically, after [`ChecksFile::validate`].
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.validate()?;
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::unexpected(format!("encoding {CHECKS_FILE}: {e}")))?;
        text.push(b'\n');
        write_atomic(&Self::path(dir), &text)
    }

    /// Refuses an entry whose tag or server name the store would refuse,
    /// an HTTP check whose URL is not `http(s)://host...` or whose status
    /// is not 100-599, and an empty, over-long or multi-line command.
    pub fn validate(&self) -> Result<()> {
        if let Some(entry) = &self.fleet {
            validate_entry("fleet", entry)?;
        }
        for (tag, entry) in &self.tags {
            let at = format!("tags.{}", display_safe(tag));
            crate::state::store::validate_tag(tag)
                .map_err(|e| Error::config_invalid(format!("{at}: {}", e.message())))?;
            validate_entry(&at, entry)?;
        }
        for (server, entry) in &self.servers {
            let at = format!("servers.{}", display_safe(server));
            crate::state::store::validate_name(server)
                .map_err(|e| Error::config_invalid(format!("{at}: {}", e.message())))?;
            validate_entry(&at, entry)?;
        }
        Ok(())
    }

    /// The entry `scope` names, if there is one.
    pub fn entry(&self, scope: &Scope) -> Option<&CheckEntry> {
        match scope {
            Scope::Fleet => self.fleet.as_ref(),
            Scope::Tag(t) => self.tags.get(t),
            Scope::Server(s) => self.servers.get(s),
        }
    }

    /// Replaces (or, with an empty `entry`, removes) the entry `scope`
    /// names.
    pub fn set(&mut self, scope: &Scope, entry: CheckEntry) {
        let keep = !entry.is_empty();
        match scope {
            Scope::Fleet => self.fleet = keep.then_some(entry),
            Scope::Tag(t) if keep => {
                self.tags.insert(t.clone(), entry);
            }
            Scope::Tag(t) => {
                self.tags.remove(t);
            }
            Scope::Server(s) if keep => {
                self.servers.insert(s.clone(), entry);
            }
            Scope::Server(s) => {
                self.servers.remove(s);
            }
        }
    }

    /// What `server` must pass and its rollback policy (see the module
    /// doc for the order).
    pub fn for_server(&self, server: &ServerRecord) -> Declared {
        let mut declared = Declared {
            rollback_from: "default".to_owned(),
            ..Declared::default()
        };
        let mut add = |entry: &CheckEntry| {
            for check in &entry.http {
                if !declared.http.contains(check) {
                    declared.http.push(check.clone());
                }
            }
            for command in &entry.commands {
                if !declared.commands.contains(command) {
                    declared.commands.push(command.clone());
                }
            }
        };
        let fleet = self.fleet.as_ref();
        let tags: Vec<(&String, &CheckEntry)> = server
            .tags
            .iter()
            .filter_map(|t| self.tags.get(t).map(|e| (t, e)))
            .collect();
        let own = self.servers.get(&server.name);
        fleet.into_iter().for_each(&mut add);
        tags.iter().for_each(|(_, e)| add(e));
        own.into_iter().for_each(&mut add);

        let careful_tag = tags
            .iter()
            .filter_map(|(t, e)| e.rollback.map(|p| (p, *t)))
            .min_by_key(|(p, _)| *p);
        let (policy, from) = if let Some(p) = own.and_then(|e| e.rollback) {
            (p, format!("server {}", server.name))
        } else if let Some((p, tag)) = careful_tag {
            (p, format!("tag {tag}"))
        } else if let Some(p) = fleet.and_then(|e| e.rollback) {
            (p, "fleet".to_owned())
        } else {
            (RollbackPolicy::default(), "default".to_owned())
        };
        declared.rollback = policy;
        declared.rollback_from = from;
        declared.wait_secs = own.and_then(|e| e.wait).or_else(|| {
            fleet
                .into_iter()
                .chain(tags.iter().map(|(_, e)| *e))
                .filter_map(|e| e.wait)
                .max()
        });
        declared.platform = own.map(|e| e.platform.clone()).unwrap_or_default().or_from(
            tags.iter()
                .map(|(_, e)| &e.platform)
                .chain(fleet.map(|e| &e.platform)),
        );
        declared
    }
}

fn validate_entry(at: &str, entry: &CheckEntry) -> Result<()> {
    entry.platform.validate(at)?;
    if let Some(wait) = entry.wait
        && !(1..=3600).contains(&wait)
    {
        return Err(
            Error::config_invalid(format!("{at}.wait: {wait} is not 1 to 3600 seconds"))
                .with_hint("Give how many seconds the checks may take to pass, e.g. 120"),
        );
    }
    for (i, check) in entry.http.iter().enumerate() {
        validate_http(check).map_err(|e| {
            let message = format!("{at}.http[{i}]: {}", e.message());
            e.with_message(message)
        })?;
    }
    for (i, command) in entry.commands.iter().enumerate() {
        validate_command(command).map_err(|e| {
            let message = format!("{at}.commands[{i}]: {}", e.message());
            e.with_message(message)
        })?;
    }
    Ok(())
}

/// Refuses a URL that is not `http://` or `https://` with a host, or is
/// too long, and a status outside 100-599.
pub fn validate_http(check: &HttpCheck) -> Result<()> {
    let hint = "Give a URL such as https://app.example.com/health and the status it answers when \
                healthy (e.g. 200)";
    if check.url.len() > MAX_URL {
        return Err(
            Error::config_invalid(format!("the URL is longer than {MAX_URL} characters"))
                .with_hint(hint),
        );
    }
    let url = reqwest::Url::parse(&check.url)
        .map_err(|e| Error::config_invalid(format!("not a URL ({e})")).with_hint(hint))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config_invalid(format!(
            "{} is not an http:// or https:// URL with a host",
            check.shown()
        ))
        .with_hint(hint));
    }
    if !(100..=599).contains(&check.status) {
        return Err(Error::config_invalid(format!(
            "status {} is not an HTTP status (100-599)",
            check.status
        ))
        .with_hint(hint));
    }
    Ok(())
}

/// Refuses an empty command, one longer than [`MAX_COMMAND`] and one with
/// a line break or a control character (one line, as typed).
pub fn validate_command(command: &str) -> Result<()> {
    let hint = "Give one shell command line that exits 0 when healthy, e.g. \
                `systemctl is-active --quiet nginx`";
    if command.trim().is_empty() {
        return Err(Error::config_invalid("the command is empty").with_hint(hint));
    }
    if command.len() > MAX_COMMAND {
        return Err(Error::config_invalid(format!(
            "the command is longer than {MAX_COMMAND} characters"
        ))
        .with_hint(hint));
    }
    if command.chars().any(|c| c.is_control() && c != '\t') {
        return Err(
            Error::config_invalid("the command holds a line break or a control character")
                .with_hint(hint),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, tags: &[&str]) -> ServerRecord {
        let mut record = ServerRecord::new("1", name, "203.0.113.5");
        record.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        record
    }

    fn parse(text: &str) -> Result<ChecksFile> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CHECKS_FILE), text).unwrap();
        ChecksFile::load(dir.path())
    }

    #[test]
    fn a_server_gets_every_check_and_its_own_or_the_most_careful_policy() {
        let file = parse(
            r#"{"fleet":{"rollback":"auto","commands":["true"]},
                "tags":{"db":{"rollback":"never"},"web":{"rollback":"ask",
                        "http":[{"url":"http://127.0.0.1:9/health"}]}},
                "servers":{"web-1":{"rollback":"auto","commands":["true","test -d /srv"]}}}"#,
        )
        .unwrap();
        let own = file.for_server(&server("web-1", &["db"]));
        assert_eq!(own.rollback, RollbackPolicy::Auto);
        assert_eq!(own.rollback_from, "server web-1");
        assert_eq!(own.commands, ["true", "test -d /srv"], "each once");

        let tagged = file.for_server(&server("web-2", &["web", "db"]));
        assert_eq!(tagged.rollback, RollbackPolicy::Never, "never beats ask");
        assert_eq!(tagged.rollback_from, "tag db");
        assert_eq!(tagged.http.len(), 1);
        assert_eq!(tagged.http[0].status, 200, "the default status");

        let plain = file.for_server(&server("other", &[]));
        assert_eq!(plain.rollback, RollbackPolicy::Auto);
        assert_eq!(plain.rollback_from, "fleet");
        assert_eq!(
            ChecksFile::default().for_server(&server("x", &[])).rollback,
            RollbackPolicy::Ask,
            "the default"
        );
    }

    #[test]
    fn a_wrong_file_is_refused_saying_where() {
        for (text, says) in [
            (r#"{"fleet":{"rollback":"sometimes"}}"#, "unknown variant"),
            (r#"{"fleet":{"comands":["true"]}}"#, "unknown field"),
            (
                r#"{"servers":{"web-1":{"http":[{"url":"ftp://x/"}]}}}"#,
                "servers.web-1.http[0]",
            ),
            (
                r#"{"tags":{"prod":{"http":[{"url":"http://x/","status":42}]}}}"#,
                "status 42",
            ),
            (r#"{"fleet":{"commands":["  "]}}"#, "fleet.commands[0]"),
            (r#"{"fleet":{"commands":["true\nrm -rf /"]}}"#, "line break"),
            (r#"{"servers":{"-web":{}}}"#, "servers.-web"),
            (r#"{"fleet":{"wait":0}}"#, "fleet.wait"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), kastell_core::ErrorKind::ConfigInvalid);
            assert!(err.message().contains(says), "{text}: {err}");
            assert!(err.message().contains(CHECKS_FILE), "{err}");
        }
    }

    #[test]
    fn a_url_is_shown_without_what_may_be_secret() {
        let check = HttpCheck {
            url: "https://user:pw@app.example.com:8443/health?token=abc#x".to_owned(),
            status: 200,
        };
        assert_eq!(check.shown(), "https://app.example.com:8443/health?…");
    }

    #[test]
    fn set_and_save_round_trip_and_an_empty_entry_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ChecksFile::default();
        let scope = Scope::Tag("prod".to_owned());
        file.set(
            &scope,
            CheckEntry {
                rollback: Some(RollbackPolicy::Auto),
                commands: vec!["true".to_owned()],
                ..CheckEntry::default()
            },
        );
        file.save(dir.path()).unwrap();
        assert_eq!(ChecksFile::load(dir.path()).unwrap(), file);
        file.set(&scope, CheckEntry::default());
        assert!(file.tags.is_empty());
    }
}
