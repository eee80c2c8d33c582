//! Human rendering of operation payloads: each step with its status and
//! duration, the key fields, warnings, notes and suggested next steps.
//! The payload is the exact JSON `--json` prints (and MCP returns), so
//! both views always show the same result.

use std::time::Duration;

use kastell_core::Result;
use serde_json::Value;

use super::output::{Output, error_text, printable, render_toned, status_tones};
use super::style::{Paint, Tone};
use super::when;
use crate::ops::{OpError, human_bytes};

/// What one operation on one server gave: the ops payload (success or
/// [`OpError`]) and how long it took.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The server asked for (`None`: the only one, auto-selected).
    pub server: Option<String>,
    /// The success payload, or the failure.
    pub result: std::result::Result<Value, OpError>,
    /// Wall time of the whole operation.
    pub elapsed: Duration,
    /// What the operation itself renders for a person
    /// ([`crate::ops::Operation::render`]), printed last.
    pub detail: Vec<String>,
}

impl Outcome {
    /// Whether the operation succeeded.
    pub(crate) fn ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The server's name as the payload has it, else as asked for.
    pub(crate) fn server_name(&self) -> String {
        let from_payload = match &self.result {
            Ok(v) => v.get("server").and_then(Value::as_str).map(str::to_owned),
            Err(e) => e.server.clone(),
        };
        from_payload
            .or_else(|| self.server.clone())
            .unwrap_or_else(|| "-".to_owned())
    }

    /// The payload as `--json` prints it for a single server: the ops
    /// success payload or the ops failure payload, unchanged.
    pub(crate) fn payload(&self) -> Value {
        match &self.result {
            Ok(v) => v.clone(),
            Err(e) => serde_json::to_value(e).unwrap_or_else(|_| Value::String(e.to_string())),
        }
    }
}

/// Key fields printed as `label: value` when present.
const FIELDS: [(&str, &str); 14] = [
    ("message", "message"),
    ("backupId", "backup"),
    ("backupPath", "path"),
    ("platformVersion", "platform version"),
    ("compression", "compression"),
    ("compressionReason", "why"),
    ("transfer", "transfer"),
    ("safetyBackupId", "safety backup"),
    ("snapshotId", "snapshot"),
    ("costEstimate", "cost estimate"),
    ("versionBefore", "version before"),
    ("versionAfter", "version after"),
    ("finalStatus", "final status"),
    ("hint", "hint"),
];

/// A payload value as a person reads it: a string as it is, but with its
/// control characters escaped ([`printable`]: much of a payload comes from
/// the server), anything else as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => printable(s),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

/// The lines describing `outcome` under the heading `title`, without its
/// error ([`error_block`]) and next steps ([`next_lines`]); statuses and
/// warnings coloured as `paint` says.
pub(crate) fn lines(title: &str, outcome: &Outcome, paint: Paint) -> Vec<String> {
    let payload = outcome.payload();
    let ip = payload.get("ip").map(text).unwrap_or_default();
    let target = if ip.is_empty() {
        outcome.server_name()
    } else {
        format!("{} ({ip})", outcome.server_name())
    };
    let state = if outcome.ok() { "OK" } else { "FAILED" };
    let mut out = vec![format!(
        "{} {} in {}",
        paint.tone(Tone::Heading, &format!("{title} on {target}:")),
        paint.status(state),
        millis(outcome.elapsed.as_millis())
    )];
    for (key, label) in FIELDS {
        // A failure's hint is in its error block.
        if key == "hint" && !outcome.ok() {
            continue;
        }
        if let Some(v) = payload.get(key).filter(|v| !v.is_null()) {
            out.push(format!("  {label}: {}", text(v)));
        }
    }
    if let Some(proof) = payload.get("lastVerifiedBackup").filter(|v| v.is_object()) {
        out.push(format!(
            "  last proven backup: {} ({} at {})",
            proof.get("backupId").map(text).unwrap_or_default(),
            proof.get("proof").map(text).unwrap_or_default(),
            proof.get("verifiedAt").map(text).unwrap_or_default()
        ));
    }
    if let Some(recovery) = payload.get("lastRecovery").filter(|v| v.is_object()) {
        let ms = recovery
            .get("durationMs")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let apps = recovery
            .get("apps")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        out.push(format!(
            "  last recovery: {:.1}s (scratch drill of backup {} at {}{})",
            ms as f64 / 1000.0,
            recovery.get("backupId").map(text).unwrap_or_default(),
            recovery.get("verifiedAt").map(text).unwrap_or_default(),
            if apps > 0 {
                format!("; {apps} app(s) checked on the new server")
            } else {
                String::new()
            }
        ));
    }
    if let Some(by) = payload.get("replacedBy").filter(|v| v.is_string()) {
        out.push(format!("  replaced by: {}", text(by)));
    }
    match payload.get("repository") {
        Some(Value::String(name)) => out.push(format!("  repository: {name}")),
        Some(copy @ Value::Object(_)) => {
            let id = copy.get("snapshotId").map(text).unwrap_or_default();
            out.push(format!(
                "  repository: {}, snapshot {} ({} bytes, {} new after dedup and compression)",
                copy.get("repository").map(text).unwrap_or_default(),
                &id[..8.min(id.len())],
                copy.get("totalBytes").map(text).unwrap_or_default(),
                copy.get("addedBytes").map(text).unwrap_or_default()
            ));
        }
        _ => {}
    }
    if let Some(s) = payload.get("snapshot").filter(|v| v.is_object()) {
        out.push(format!(
            "  snapshot: {} ({}, {})",
            s.get("id").map(text).unwrap_or_default(),
            s.get("name").map(text).unwrap_or_default(),
            s.get("status").map(text).unwrap_or_default()
        ));
    }
    let files = strings(payload.get("files"));
    if !files.is_empty() && payload.get("backups").is_none() {
        out.push(format!("  files: {}", files.join(", ")));
    }
    // What the error block says is not repeated on the step that failed.
    let said: Vec<&str> = match &outcome.result {
        Ok(_) => Vec::new(),
        Err(e) => std::iter::once(e.error.as_str())
            .chain(e.hint.as_deref())
            .collect(),
    };
    out.extend(step_lines(payload.get("steps"), &said, paint));
    out.extend(drill_lines(payload.get("artifacts"), paint));
    out.extend(list_lines(&payload, paint));
    // What the operation renders quotes the server (log lines, above all).
    out.extend(outcome.detail.iter().map(|line| printable(line)));
    for w in strings(payload.get("warnings")) {
        out.push(format!("  {}: {w}", paint.tone(Tone::Warning, "warning")));
    }
    for n in strings(payload.get("notes")) {
        out.push(format!("  note: {n}"));
    }
    out
}

/// `error: ...` and `hint: ...`: a failure said once, with its hint
/// (coloured as `paint` says).
pub(crate) fn error_block(error: &OpError, paint: Paint) -> String {
    error_text(&error.error, error.hint.as_deref(), paint)
}

/// `  next: kastell backup create web-1  (why)` for each suggested step
/// that has a command line to type (see [`crate::ops::Suggestion::cli`]).
pub(crate) fn next_lines(payload: &Value) -> Vec<String> {
    payload
        .get("suggested_actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let command = s.get("cli").and_then(Value::as_str)?;
            let reason = s.get("reason").map(text).unwrap_or_default();
            Some(format!("  next: {command}  ({reason})"))
        })
        .collect()
}

fn millis(ms: u128) -> String {
    if ms >= 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// The steps as a table (`#`, step, status, time, detail), indented
/// under the report's heading, leaving out an error or hint in `said`
/// (the failure's own, in its error block).
fn step_lines(steps: Option<&Value>, said: &[&str], paint: Paint) -> Vec<String> {
    let Some(steps) = steps.and_then(Value::as_array).filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let get = |k: &str| s.get(k).map(text).unwrap_or_default();
            let ms = s.get("durationMs").and_then(Value::as_u64).unwrap_or(0);
            let mut detail = get("detail");
            for key in ["error", "hint"] {
                let value = get(key);
                if !value.is_empty() && !said.contains(&value.as_str()) {
                    if !detail.is_empty() {
                        detail.push_str("  ");
                    }
                    detail.push_str(&format!("{key}: {value}"));
                }
            }
            vec![
                format!("{}.", get("step")),
                get("name"),
                get("status"),
                millis(u128::from(ms)),
                detail,
            ]
        })
        .collect();
    indented(&["#", "STEP", "STATUS", "TIME", "DETAIL"], &rows, paint)
}

/// A table indented by two spaces, its `STATUS` column coloured.
fn indented(headers: &[&str], rows: &[Vec<String>], paint: Paint) -> Vec<String> {
    render_toned(headers, rows, paint, status_tones(headers))
        .lines()
        .map(|l| format!("  {l}"))
        .collect()
}

/// A drill's artifacts and checks: `  db.dump into PostgreSQL 15 (812 ms)`
/// then `    ok   rows: ...` (or `skip`, `FAIL`) per check.
fn drill_lines(artifacts: Option<&Value>, paint: Paint) -> Vec<String> {
    let Some(artifacts) = artifacts.and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in artifacts {
        out.push(format!(
            "  {} into {} ({})",
            a.get("artifact").map(text).unwrap_or_default(),
            a.get("target").map(text).unwrap_or_default(),
            millis(u128::from(
                a.get("durationMs").and_then(Value::as_u64).unwrap_or(0)
            ))
        ));
        for c in a
            .get("checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let outcome = c.get("outcome").and_then(Value::as_str).unwrap_or("");
            out.push(format!(
                "    {} {}: {}",
                match outcome {
                    "passed" => paint.tone(Tone::Ok, "ok  "),
                    "skipped" => paint.tone(Tone::Skipped, "skip"),
                    _ => paint.tone(Tone::Failed, "FAIL"),
                },
                c.get("name").map(text).unwrap_or_default(),
                c.get("detail").map(text).unwrap_or_default()
            ));
        }
    }
    out
}

/// Tables for listed backups and snapshots.
fn list_lines(payload: &Value, paint: Paint) -> Vec<String> {
    let listed = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
    };
    if let Some(backups) = listed("backups") {
        return backup_table(backups, paint);
    }
    if let Some(snapshots) = listed("snapshots") {
        let cols = ["id", "name", "status", "sizeGb", "createdAt"];
        let rows: Vec<Vec<String>> = snapshots
            .iter()
            .map(|i| {
                let mut row: Vec<String> = cols
                    .iter()
                    .map(|c| i.get(*c).map(text).unwrap_or_default())
                    .collect();
                row[4] = when::moment_of(&row[4]);
                row
            })
            .collect();
        return indented(
            &["SNAPSHOT", "NAME", "STATUS", "SIZE GB", "CREATED"],
            &rows,
            paint,
        );
    }
    Vec::new()
}

/// The table of a backup listing, one row per backup in the order given
/// (backup-list's: newest first): id, status, platform and version, size,
/// age, and its newest proof. A restore's safety backup is starred and
/// explained under the table. `entries` are the backups as backup-list's
/// payload has them (`BackupEntry` in JSON), from one server or several.
pub(crate) fn backup_table(entries: &[Value], paint: Paint) -> Vec<String> {
    let get = |item: &Value, key: &str| item.get(key).map(text).unwrap_or_default();
    let mut notes = Vec::new();
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|item| {
            let id = get(item, "backupId");
            let mut shown = id.clone();
            if let Some(restored) = item.get("safetyFor").map(text) {
                shown.push_str(" *");
                notes.push(format!(
                    "  {} {id}: safety backup taken before restoring {restored} (never picked as the newest; restore it with --backup {id})",
                    paint.tone(Tone::Warning, "*"),
                ));
            }
            let proven = match item.get("verification") {
                Some(v) if v.is_object() => format!(
                    "{} {}{}",
                    get(v, "proof"),
                    when::age_of(&get(v, "verifiedAt")),
                    v.get("checksSkipped")
                        .and_then(Value::as_u64)
                        .map(|n| format!(" ({n} skipped)"))
                        .unwrap_or_default()
                ),
                _ => "never".to_owned(),
            };
            vec![
                shown,
                get(item, "status"),
                get(item, "platform"),
                get(item, "coolifyVersion"),
                item.get("sizeBytes")
                    .and_then(Value::as_u64)
                    .map(human_bytes)
                    .unwrap_or_default(),
                when::age_of(&get(item, "timestamp")),
                proven,
            ]
        })
        .collect();
    let mut lines = indented(
        &[
            "BACKUP", "STATUS", "PLATFORM", "VERSION", "SIZE", "AGE", "PROVEN",
        ],
        &rows,
        paint,
    );
    lines.extend(notes);
    lines
}

/// Prints `outcome` or, with `--json`, its payload. Human text: the report
/// on stdout, then a failure's [`error_block`] on stderr (its only mention),
/// then the next steps on stdout.
pub(crate) fn print(out: &Output, title: &str, outcome: &Outcome) -> Result<()> {
    if out.is_json() {
        return out.json(&outcome.payload());
    }
    for line in lines(title, outcome, out.paint()) {
        out.line(line)?;
    }
    if let Err(e) = &outcome.result {
        super::output::write_stderr(&error_block(e, Paint::stderr()));
    }
    for line in next_lines(&outcome.payload()) {
        out.line(line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_show_status_and_duration() {
        let outcome = Outcome {
            server: Some("web-1".into()),
            result: Ok(json!({
                "success": true, "server": "web-1", "ip": "203.0.113.1",
                "backupId": "2026-01-01_00-00-00-000",
                "steps": [{"step": 1, "name": "Verify backup", "status": "success",
                           "detail": "ok", "durationMs": 12}],
                "suggested_actions": []
            })),
            elapsed: Duration::from_millis(40),
            detail: Vec::new(),
        };
        let text = lines("backup restore", &outcome, Paint::none()).join("\n");
        assert!(text.starts_with("backup restore on web-1 (203.0.113.1): OK in 40 ms"));
        assert!(text.contains("backup: 2026-01-01_00-00-00-000"), "{text}");
        assert!(
            text.contains("  #   STEP           STATUS   TIME   DETAIL\n  1.  Verify backup  success  12 ms  ok"),
            "{text}"
        );
    }

    /// What a hostile server put in a payload (a version string, a log
    /// line, a warning, an error) reaches the terminal with its escape
    /// sequences written out, never as sequences.
    #[test]
    fn what_a_server_sent_cannot_drive_the_terminal() {
        let osc = "\u{1b}]52;c;ZXZpbA==\u{7}";
        let outcome = Outcome {
            server: Some("web-1".into()),
            result: Ok(json!({
                "success": true, "server": "web-1", "ip": "203.0.113.1",
                "platformVersion": format!("4.0{osc}"),
                "warnings": [format!("disk\r{osc}")],
                "suggested_actions": []
            })),
            elapsed: Duration::from_millis(40),
            detail: vec![format!("  | journal line {osc}")],
        };
        let text = lines("status", &outcome, Paint::none()).join("\n");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("journal line \\u{1b}]52"), "{text}");
        assert!(text.contains("4.0\\u{1b}]52"), "{text}");
        let error = OpError::from(kastell_core::Error::unexpected(format!(
            "the server said {osc}\nand more"
        )));
        let block = error_block(&error, Paint::none());
        assert!(!block.contains('\u{1b}'), "{block:?}");
        assert!(block.contains("\nand more"), "line breaks stay: {block:?}");
    }

    #[test]
    fn a_failure_is_one_error_block_and_next_steps_are_commands() {
        let mut error = OpError::from(
            kastell_core::Error::invalid_state("web-1 is manual").with_hint("Add its --id"),
        );
        error.suggested_actions = vec![
            crate::ops::Suggestion {
                command: "server_backup { action: 'backup-create', server: 'web-1' }".into(),
                reason: "SSH instead".into(),
                cli: Some("kastell backup create web-1".into()),
            },
            crate::ops::Suggestion {
                command: "server_info { action: 'list' }".into(),
                reason: "See the servers".into(),
                cli: None,
            },
        ];
        let failed = kastell_core::types::StepTimer::start("Reboot").failure(
            &kastell_core::Error::invalid_state("web-1 is manual").with_hint("Add its --id"),
        );
        error.steps = vec![crate::ops::Step::numbered(1, &failed)];
        let outcome = Outcome {
            server: Some("web-1".into()),
            result: Err(error.clone()),
            elapsed: Duration::from_millis(3),
            detail: Vec::new(),
        };
        let text = lines("snapshot delete", &outcome, Paint::none());
        // The failed step without the error and hint its block says.
        assert_eq!(text.len(), 3, "{text:?}");
        assert_eq!(text[0], "snapshot delete on web-1: FAILED in 3 ms");
        assert!(text[2].starts_with("  1.  Reboot  failure  "), "{text:?}");
        assert!(text[2].ends_with(" ms"), "{text:?}");
        assert_eq!(
            error_block(&error, Paint::none()),
            "error: web-1 is manual\nhint: Add its --id\n"
        );
        assert_eq!(
            next_lines(&outcome.payload()),
            ["  next: kastell backup create web-1  (SSH instead)"]
        );
    }
}
