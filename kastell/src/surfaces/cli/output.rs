//! Everything the CLI writes to stdout goes through here.
//!
//! Human text by default, JSON with `--json`. A closed pipe (`kastell
//! server list | head -1`) ends output quietly instead of failing.

use std::fmt::Display;
use std::io::{ErrorKind as IoKind, Write};

use kastell_core::{Error, Result};
use serde::Serialize;

use super::style::{Paint, Tone};

/// Writes results to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    paint: Paint,
}

impl Output {
    /// Output in JSON (`true`) or human text (coloured when stdout is a
    /// terminal that wants colour, see [`super::style`]).
    pub fn new(json: bool) -> Self {
        Self {
            json,
            paint: Paint::stdout(json),
        }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Whether and how stdout's text is coloured.
    pub(crate) fn paint(&self) -> Paint {
        self.paint
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

    /// Writes an aligned table with a header row; a `STATUS` or `RESULT`
    /// column's words in their colour ([`status_tones`]).
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
        let text = render_toned(headers, rows, self.paint, status_tones(headers));
        write_stdout(text.as_bytes())
    }
}

/// The longest cell a table shows (in characters); a longer one ends in
/// `…`: a table is for reading, and no terminal shows more.
const MAX_CELL: usize = 4096;

/// A cell as a terminal may show it: control characters (an ANSI escape,
/// a carriage return that would forge a row) written as escapes
/// (`\u{1b}`), everything else as is.
pub(crate) fn printable(cell: &str) -> String {
    escape_controls(cell, false)
}

/// `text` with every control character written as an escape, except line
/// breaks when `keep_newlines` (a multi-line message): what a server
/// sent (an error's stderr, a log line, a version string) cannot move
/// the cursor, retitle the window or write the clipboard of the
/// operator's terminal.
pub(crate) fn escape_controls(text: &str, keep_newlines: bool) -> String {
    let escaped = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !text.chars().any(escaped) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if escaped(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// [`printable`], cut at [`MAX_CELL`] characters.
fn table_cell(cell: &str) -> String {
    let shown = printable(cell);
    match shown.char_indices().nth(MAX_CELL) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    }
}

/// The tones of a table whose `STATUS` or `RESULT` column holds status
/// words (see [`Tone::of_status`]): `(column, cell)` to its tone.
pub(crate) fn status_tones(headers: &[&str]) -> impl Fn(usize, &str) -> Option<Tone> + use<> {
    let status: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| matches!(**h, "STATUS" | "RESULT"))
        .map(|(i, _)| i)
        .collect();
    move |column, cell| {
        if status.contains(&column) {
            Tone::of_status(cell)
        } else {
            None
        }
    }
}

/// A left-aligned table (comfy-table's layout), columns separated by two
/// spaces, no trailing blanks, no colour. Cells are shown [`printable`]
/// and cut at [`MAX_CELL`] characters.
#[cfg(test)]
pub(crate) fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_toned(headers, rows, Paint::none(), |_, _| None)
}

/// [`render_table`] with the header row as a heading and each cell for
/// which `tone(column, cell)` says so in its colour, when `paint` is on.
/// The layout is the same either way: colour is added to the laid-out
/// text, so escape codes never count towards a column's width.
pub(crate) fn render_toned(
    headers: &[&str],
    rows: &[Vec<String>],
    paint: Paint,
    tone: impl Fn(usize, &str) -> Option<Tone>,
) -> String {
    let header: Vec<String> = headers.iter().map(|h| table_cell(h)).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| table_cell(c)).collect())
        .collect();
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.clone())
        .add_rows(cells.clone());
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut out = String::new();
    for (index, line) in table.lines().enumerate() {
        let line = line.trim_end();
        let painted = match index {
            0 => paint.tone(Tone::Heading, line),
            _ => match cells.get(index - 1) {
                Some(row) => paint_cells(line, row, paint, &tone),
                None => line.to_owned(),
            },
        };
        out.push_str(&painted);
        out.push('\n');
    }
    out
}

/// `line` (the laid-out `row`) with each cell `tone` names in its colour.
/// Cells are found left to right: only blanks lie between two cells, so
/// each one's text is the first match after the one before it (a blank or
/// space-led cell is left as it is).
fn paint_cells(
    line: &str,
    row: &[String],
    paint: Paint,
    tone: &impl Fn(usize, &str) -> Option<Tone>,
) -> String {
    let mut out = String::new();
    let mut rest = line;
    for (column, cell) in row.iter().enumerate() {
        if cell.is_empty() || cell.starts_with(' ') {
            continue;
        }
        let Some(at) = rest.find(cell.as_str()) else {
            break;
        };
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        match tone(column, cell) {
            Some(t) => out.push_str(&paint.tone(t, cell)),
            None => out.push_str(cell),
        }
        rest = &after[cell.len()..];
    }
    out.push_str(rest);
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
    let hint = crate::advice::hint(err);
    write_stderr(&error_text(
        &err.to_string(),
        hint.as_deref(),
        Paint::stderr(),
    ));
}

/// `error: ...` and `hint: ...` lines, the word `error` in the failure's
/// colour when `paint` is on.
pub(crate) fn error_text(error: &str, hint: Option<&str>, paint: Paint) -> String {
    let mut text = format!(
        "{}: {}\n",
        paint.tone(Tone::Failed, "error"),
        escape_controls(error, true)
    );
    if let Some(hint) = hint {
        text.push_str(&format!(
            "{}: {}\n",
            paint.tone(Tone::Warning, "hint"),
            escape_controls(hint, true)
        ));
    }
    text
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
        // Over 65,535 characters (`format!`'s width would panic, a u16
        // width wraps): one row, cut with an ellipsis.
        let long = "a".repeat(70_000);
        let text = render_table(&["NAME", "IP"], &[vec![long.clone(), "1".into()]]);
        assert!(text.starts_with("NAME"));
        assert_eq!(text.lines().count(), 2, "one row");
        let row = text.lines().nth(1).unwrap();
        assert!(
            row.starts_with(&format!("{}…  1", &long[..MAX_CELL])),
            "{}",
            &row[4000..]
        );
        // A name that would clear the screen and forge a row.
        let evil = "x\u{1b}[2J\rweb-2        203.0.113.66\n";
        let text = render_table(&["NAME"], &[vec![evil.into()]]);
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(text.contains("x\\u{1b}[2J\\rweb-2"), "{text:?}");
    }

    #[test]
    fn colour_goes_on_the_laid_out_text_and_never_widens_a_column() {
        let headers = ["STEP", "STATUS", "TIME"];
        let rows = [
            vec!["Verify".into(), "success".into(), "12 ms".into()],
            vec!["Restore success".into(), "failure".into(), "3 ms".into()],
        ];
        let plain = render_table(&headers, &rows);
        let on = Paint::stdout(false);
        // Tests run with stdout captured: never a terminal, no colour.
        assert_eq!(
            render_toned(&headers, &rows, on, status_tones(&headers)),
            plain
        );
        let forced = super::super::style::tests::forced();
        let coloured = render_toned(&headers, &rows, forced, status_tones(&headers));
        assert_ne!(coloured, plain);
        let stripped: String = anstream::adapter::strip_str(&coloured).to_string();
        assert_eq!(stripped, plain, "same layout without the escapes");
        let row = coloured.lines().nth(2).unwrap();
        // The name's "success" is no status; the status column's is.
        assert!(
            row.starts_with("Restore success  \u{1b}[1m\u{1b}[31mfailure"),
            "{row:?}"
        );
        assert!(
            coloured
                .lines()
                .nth(1)
                .unwrap()
                .contains("\u{1b}[32msuccess\u{1b}[0m")
        );
    }
}
