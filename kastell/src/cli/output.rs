//! Everything the CLI writes to stdout goes through here.
//!
//! Human text by default, JSON with `--json`. A closed pipe (`kastell
//! server list | head -1`) ends output quietly instead of failing.

use std::fmt::Display;
use std::io::{ErrorKind as IoKind, Write};

use kastell_core::{Error, Result};
use serde::Serialize;

/// Writes results to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Output in JSON (`true`) or human text.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Writes `text` and a newline. Refuses only on an I/O failure other
    /// than a closed pipe.
    pub fn line(&self, text: impl Display) -> Result<()> {
        write_stdout(format!("{text}\n").as_bytes())
    }

    /// Writes `value` as pretty JSON and a newline. Refuses on an encoding
    /// or I/O failure.
    pub fn json(&self, value: &impl Serialize) -> Result<()> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::unexpected(format!("encoding JSON output: {e}")))?;
        text.push('\n');
        write_stdout(text.as_bytes())
    }

    /// Writes a left-aligned table with a header row.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
        write_stdout(render_table(headers, rows).as_bytes())
    }
}

/// A left-aligned table, columns separated by two spaces, no trailing
/// blanks.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == IoKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("writing to stdout", e)),
    }
}

/// The JSON shape of a failure on stdout with `--json`.
#[derive(Debug, Serialize)]
struct JsonError<'a> {
    error: String,
    hint: Option<&'a str>,
    kind: &'static str,
}

/// Reports `err` to the user: `error: ...` and `hint: ...` lines on
/// stderr, or with `json` a `{error, hint, kind}` object on stdout.
pub fn report_error(err: &Error, json: bool) {
    if json {
        let hint = crate::advice::hint(err);
        let body = JsonError {
            error: err.to_string(),
            hint: hint.as_deref(),
            kind: err.kind().as_str(),
        };
        let text = serde_json::to_string_pretty(&body)
            .unwrap_or_else(|_| format!("{{\"error\": {:?}}}", err.to_string()));
        // Nothing more can be done if stdout is gone.
        let _ = write_stdout(format!("{text}\n").as_bytes());
        return;
    }
    let mut text = format!("error: {err}\n");
    if let Some(hint) = crate::advice::hint(err) {
        text.push_str(&format!("hint: {hint}\n"));
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let text = render_table(
            &["NAME", "IP"],
            &[
                vec!["web-1".into(), "203.0.113.10".into()],
                vec!["database-01".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME         IP\nweb-1        203.0.113.10\ndatabase-01\n"
        );
    }
}
