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

/// A cell as a terminal may show it: control characters (an ANSI escape,
/// a carriage return that would forge a row) written as escapes
/// (`\u{1b}`), everything else as is.
pub(crate) fn printable(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_owned();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A left-aligned table, columns separated by two spaces, no trailing
/// blanks. Cells are shown [`printable`]; any width works (a cell of a
/// million characters just makes a wide column).
pub(crate) fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let cells: Vec<Vec<String>> = std::iter::once(&header)
        .chain(rows)
        .map(|row| row.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            line.push_str(cell);
            let pad = width.saturating_sub(cell.chars().count()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
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
    write_stderr(&text);
}

/// Writes `text` to stderr in one piece (nothing more can be done if
/// stderr is gone).
pub(crate) fn write_stderr(text: &str) {
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

    #[test]
    fn huge_cells_and_terminal_escapes_are_shown_safely() {
        // Over 65,535 characters: `format!`'s width would panic.
        let long = "a".repeat(70_000);
        let text = render_table(&["NAME", "IP"], &[vec![long.clone(), "1".into()]]);
        assert!(text.starts_with("NAME"));
        assert!(text.lines().nth(1).unwrap().starts_with(&long));
        // A name that would clear the screen and forge a row.
        let evil = "x\u{1b}[2J\rweb-2        203.0.113.66\n";
        let text = render_table(&["NAME"], &[vec![evil.into()]]);
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(text.contains("x\\u{1b}[2J\\rweb-2"), "{text:?}");
    }
}
