//! `security.log`: one JSON line per security-relevant refusal, naming
//! the operation's [`crate::policy::Category`] in the words the safety levels use.
//!
//! The file lives in the kastell directory, is created with mode 0600, is
//! only ever appended to, and is rotated to `security.log.1` (replacing
//! an older rotation) when a line would take it past the size limit
//! (10 MB by default, as in the original).

use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};
use serde::Serialize;

use crate::policy::Rule;

/// The log file's name inside the kastell directory.
pub(crate) const SECURITY_LOG_FILE: &str = "security.log";
/// Rotate when the file would grow past this many bytes.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// One logged event, serialised as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEvent {
    /// When it happened (ISO-8601 UTC with milliseconds).
    pub ts: String,
    /// Severity; refusals are `warn`.
    pub level: String,
    /// The operation refused (`backup-restore`, `snapshot-create`, ...).
    pub action: String,
    /// What the operation does at most, in the safety levels' words
    /// ([`crate::policy::Category::as_str`]: `read`, `safe-write`, `disruptive`,
    /// `destructive`).
    pub category: String,
    /// Whether it costs money at the provider (a snapshot); omitted when
    /// not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub billable: bool,
    /// The outcome; refusals are `block`.
    pub result: String,
    /// Why it was refused (`KASTELL_SAFE_MODE=true`, ...).
    pub reason: String,
    /// Where the request came from (`cli` or `mcp`).
    pub surface: String,
    /// The server concerned, when there is one.
    pub server: Option<String>,
}

impl SecurityEvent {
    /// A refusal (`level: warn`, `result: block`) of `rule`'s operation,
    /// stamped now.
    pub fn block(rule: &Rule, reason: &str, surface: &str, server: Option<&str>) -> Self {
        Self {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            level: "warn".to_owned(),
            action: rule.id.to_owned(),
            category: rule.category.as_str().to_owned(),
            billable: rule.billable,
            result: "block".to_owned(),
            reason: reason.to_owned(),
            surface: surface.to_owned(),
            server: server.map(str::to_owned),
        }
    }
}

/// Appends [`SecurityEvent`]s to a `security.log` file.
#[derive(Debug, Clone)]
pub struct SecurityLog {
    path: PathBuf,
    max_bytes: u64,
}

impl SecurityLog {
    /// The log in the kastell directory `dir`. Nothing is created until
    /// the first event.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(SECURITY_LOG_FILE),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Rotates at `max_bytes` instead of the default.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` as one line, rotating first if the line would take
    /// the file past the limit. Refuses (returns an error) on any I/O or
    /// encoding failure.
    pub fn append(&self, event: &SecurityEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::unexpected(format!("encoding security event: {e}")))?;
        line.push(b'\n');
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            let rotated = rotated_path(&self.path);
            std::fs::rename(&self.path, &rotated).map_err(|e| {
                Error::io(
                    format!("rotating {} to {}", self.path.display(), rotated.display()),
                    e,
                )
            })?;
        }
        // One write call per line: O_APPEND keeps concurrent lines whole.
        crate::state::store::append_private(&self.path, &line, false)
    }

    /// Appends `event`, reporting a failure on stderr (through `tracing`)
    /// instead of returning it: a refusal must never be hidden by a log
    /// that cannot be written.
    pub fn record(&self, event: &SecurityEvent) {
        if let Err(e) = self.append(event) {
            tracing::error!(
                "could not write security event ({} {}) to {}: {e}",
                event.action,
                event.result,
                self.path.display()
            );
        }
    }
}

fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use serde_json::Value;

    fn event(n: usize) -> SecurityEvent {
        SecurityEvent::block(
            <crate::ops::BackupRestoreOp as crate::ops::Operation>::ID.rule(),
            &format!("KASTELL_SAFE_MODE=true #{n}"),
            "mcp",
            Some("web-1"),
        )
    }

    #[test]
    fn appends_json_lines_with_the_original_fields_at_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let log = SecurityLog::in_dir(tmp.path());
        log.append(&event(1)).unwrap();
        log.append(&event(2)).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["level"], "warn");
        assert_eq!(first["action"], "backup-restore");
        assert_eq!(first["category"], "destructive");
        assert!(first.get("billable").is_none(), "{first}");
        assert_eq!(first["result"], "block");
        assert_eq!(first["surface"], "mcp");
        assert_eq!(first["server"], "web-1");
        let ts = first["ts"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert!(ts.ends_with('Z'));
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn rotates_to_dot_one_at_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let line_len = serde_json::to_vec(&event(1)).unwrap().len() as u64 + 1;
        let log = SecurityLog::in_dir(tmp.path()).with_max_bytes(line_len * 2);
        for n in 1..=5 {
            log.append(&event(n)).unwrap();
        }
        let current = std::fs::read_to_string(log.path()).unwrap();
        let rotated = std::fs::read_to_string(rotated_path(log.path())).unwrap();
        assert_eq!(current.lines().count(), 1);
        assert!(current.contains("#5"));
        assert_eq!(rotated.lines().count(), 2);
        assert!(rotated.contains("#3") && rotated.contains("#4"));
    }

    #[test]
    fn record_swallows_write_failures() {
        let tmp = tempfile::tempdir().unwrap();
        // The log path is a directory: every append fails.
        std::fs::create_dir(tmp.path().join(SECURITY_LOG_FILE)).unwrap();
        let log = SecurityLog::in_dir(tmp.path());
        assert!(log.append(&event(1)).is_err());
        log.record(&event(1));
    }
}
