//! Human rendering of operation payloads: each step with its status and
//! duration, the key fields, warnings, notes and suggested next steps.
//! The payload is the exact JSON `--json` prints (and MCP returns), so
//! both views always show the same result.

use std::time::Duration;

use kastell_core::Result;
use serde_json::Value;

use super::output::{Output, render_table};
use crate::ops::OpError;

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

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
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
/// error ([`error_block`]) and next steps ([`next_lines`]).
pub(crate) fn lines(title: &str, outcome: &Outcome) -> Vec<String> {
    let payload = outcome.payload();
    let ip = payload.get("ip").map(text).unwrap_or_default();
    let target = if ip.is_empty() {
        outcome.server_name()
    } else {
        format!("{} ({ip})", outcome.server_name())
    };
    let state = if outcome.ok() { "OK" } else { "FAILED" };
    let mut out = vec![format!(
        "{title} on {target}: {state} in {}",
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
    out.extend(step_lines(payload.get("steps"), &said));
    out.extend(drill_lines(payload.get("artifacts")));
    out.extend(list_lines(&payload));
    out.extend(outcome.detail.iter().cloned());
    for w in strings(payload.get("warnings")) {
        out.push(format!("  warning: {w}"));
    }
    for n in strings(payload.get("notes")) {
        out.push(format!("  note: {n}"));
    }
    out
}

/// `error: ...` and `hint: ...`: a failure said once, with its hint.
pub(crate) fn error_block(error: &OpError) -> String {
    let mut text = format!("error: {}\n", error.error);
    if let Some(hint) = &error.hint {
        text.push_str(&format!("hint: {hint}\n"));
    }
    text
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

/// `  1. Status Check  success  120 ms  detail` for each step, leaving out
/// an error or hint in `said` (the failure's own, in its error block).
fn step_lines(steps: Option<&Value>, said: &[&str]) -> Vec<String> {
    let Some(steps) = steps.and_then(Value::as_array) else {
        return Vec::new();
    };
    steps
        .iter()
        .map(|s| {
            let get = |k: &str| s.get(k).map(text).unwrap_or_default();
            let ms = s.get("durationMs").and_then(Value::as_u64).unwrap_or(0);
            let mut line = format!(
                "  {}. {}  {}  {}",
                get("step"),
                get("name"),
                get("status"),
                millis(u128::from(ms))
            );
            for key in ["detail", "error", "hint"] {
                let value = get(key);
                let repeated = key != "detail" && said.contains(&value.as_str());
                if !value.is_empty() && !repeated {
                    line.push_str(&format!("  {key}: {value}"));
                }
            }
            line
        })
        .collect()
}

/// Tables for listed backups and snapshots.
/// A drill's artifacts and checks: `  db.dump into PostgreSQL 15 (812 ms)`
/// then `    ok   rows: ...` (or `skip`, `FAIL`) per check.
fn drill_lines(artifacts: Option<&Value>) -> Vec<String> {
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
                    "passed" => "ok  ",
                    "skipped" => "skip",
                    _ => "FAIL",
                },
                c.get("name").map(text).unwrap_or_default(),
                c.get("detail").map(text).unwrap_or_default()
            ));
        }
    }
    out
}

fn list_lines(payload: &Value) -> Vec<String> {
    let table = |headers: &[&str], rows: Vec<Vec<String>>| -> Vec<String> {
        render_table(headers, &rows)
            .lines()
            .map(|l| format!("  {l}"))
            .collect()
    };
    let rows_of = |key: &str, cols: &[&str]| -> Option<Vec<Vec<String>>> {
        let items = payload.get(key)?.as_array()?;
        Some(
            items
                .iter()
                .map(|i| {
                    cols.iter()
                        .map(|c| i.get(*c).map(text).unwrap_or_default())
                        .collect()
                })
                .collect(),
        )
    };
    let backup_cols = [
        "backupId",
        "status",
        "platform",
        "coolifyVersion",
        "timestamp",
    ];
    if let Some(mut rows) = rows_of("backups", &backup_cols).filter(|r| !r.is_empty()) {
        let items = payload.get("backups").and_then(Value::as_array);
        for (row, item) in rows.iter_mut().zip(items.into_iter().flatten()) {
            row.push(match item.get("verification") {
                Some(v) if v.is_object() => format!(
                    "{} {}{}",
                    v.get("proof").map(text).unwrap_or_default(),
                    v.get("verifiedAt").map(text).unwrap_or_default(),
                    v.get("checksSkipped")
                        .and_then(Value::as_u64)
                        .map(|n| format!(" ({n} skipped)"))
                        .unwrap_or_default()
                ),
                _ => "never".to_owned(),
            });
        }
        // A safety backup is starred and explained under the table.
        let mut notes = Vec::new();
        for (row, item) in rows.iter_mut().zip(items.into_iter().flatten()) {
            if let Some(restored) = item.get("safetyFor").map(text) {
                row[0].push_str(" *");
                notes.push(format!(
                    "  * {}: safety backup taken before restoring {restored} (never picked as the newest; restore it with --backup {})",
                    row[0].trim_end_matches(" *"),
                    row[0].trim_end_matches(" *")
                ));
            }
        }
        let mut lines = table(
            &["BACKUP", "STATUS", "PLATFORM", "VERSION", "TAKEN", "PROVEN"],
            rows,
        );
        lines.extend(notes);
        return lines;
    }
    let snapshot_cols = ["id", "name", "status", "sizeGb", "createdAt"];
    if let Some(rows) = rows_of("snapshots", &snapshot_cols).filter(|r| !r.is_empty()) {
        return table(&["SNAPSHOT", "NAME", "STATUS", "SIZE GB", "CREATED"], rows);
    }
    Vec::new()
}

/// Prints `outcome` or, with `--json`, its payload. Human text: the report
/// on stdout, then a failure's [`error_block`] on stderr (its only mention),
/// then the next steps on stdout.
pub(crate) fn print(out: &Output, title: &str, outcome: &Outcome) -> Result<()> {
    if out.is_json() {
        return out.json(&outcome.payload());
    }
    for line in lines(title, outcome) {
        out.line(line)?;
    }
    if let Err(e) = &outcome.result {
        super::output::write_stderr(&error_block(e));
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
        let text = lines("backup restore", &outcome).join("\n");
        assert!(text.starts_with("backup restore on web-1 (203.0.113.1): OK in 40 ms"));
        assert!(text.contains("backup: 2026-01-01_00-00-00-000"), "{text}");
        assert!(
            text.contains("1. Verify backup  success  12 ms  detail: ok"),
            "{text}"
        );
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
        let text = lines("snapshot delete", &outcome);
        // The failed step without the error and hint its block says.
        assert_eq!(text.len(), 2, "{text:?}");
        assert_eq!(text[0], "snapshot delete on web-1: FAILED in 3 ms");
        assert!(text[1].starts_with("  1. Reboot  failure  "), "{text:?}");
        assert!(text[1].ends_with(" ms"), "{text:?}");
        assert_eq!(
            error_block(&error),
            "error: web-1 is manual\nhint: Add its --id\n"
        );
        assert_eq!(
            next_lines(&outcome.payload()),
            ["  next: kastell backup create web-1  (SSH instead)"]
        );
    }
}
