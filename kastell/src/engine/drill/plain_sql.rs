//! A plain SQL dump on its way to `psql`, as hostile input: psql runs
//! backslash meta-commands (`\! cmd` runs a shell command on this machine,
//! `\o`, `\w`, `\copy`, `\i`, `\lo_export` touch its files), so the stream
//! is screened line by line and psql is held in restricted mode.
//!
//! [`MetaGuard`] passes SQL and COPY data through, drops the meta-commands
//! pg_dump itself writes (`\connect`, `\restrict`, `\unrestrict`: the
//! restore stays in the drill's database), and stops at any other: an
//! unquoted backslash in SQL, or a backslash in COPY data that pg_dump
//! never writes. It first writes `\restrict <random key>`, so the psql of
//! PostgreSQL 13.22, 14.19, 15.14, 16.10, 17.6 and later refuses every
//! meta-command itself, whatever this screen misreads.

use std::io::{self, Write};

/// The meta-commands pg_dump writes, dropped on the way.
const DROPPED: &[&str] = &["connect", "c", "restrict", "unrestrict"];

/// Escapes COPY's text format allows after a backslash in a data line (as
/// PostgreSQL's COPY TO writes them).
const COPY_ESCAPES: &[u8] = b"\\bfnrtvN";

/// Where the lexer is in the SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between tokens.
    Code,
    /// In `'...'` (`escapes`: an `E'...'` string, where a backslash
    /// escapes the next character).
    Quote { escapes: bool },
    /// In `"..."`.
    Ident,
    /// In `$tag$...$tag$`.
    Dollar(String),
    /// In `/* ... */`, nested this deep.
    Block(u32),
}

/// A meta-command found in a dump, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    /// The dump's line (1-based).
    pub line: u64,
    /// The meta-command as written (cut).
    pub command: String,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {} carries the psql meta-command {}, which would run on this machine; the \
             dump was not restored",
            self.line,
            crate::state::store::display_safe(&self.command)
        )
    }
}

/// A [`Write`] that screens a plain dump for psql meta-commands and passes
/// the rest to `inner`; after a forbidden one every write fails.
pub(super) struct MetaGuard<W: Write> {
    inner: W,
    partial: Vec<u8>,
    line: u64,
    state: State,
    /// In a `COPY ... FROM stdin;` block's data.
    copying: bool,
    /// SQL since the last `;` (a statement under way).
    pending: bool,
    found: Option<Found>,
}

impl<W: Write> MetaGuard<W> {
    /// A guard in front of `inner`, which first receives
    /// `\restrict <key>` (psql's restricted mode) when `key` is given.
    pub(super) fn new(mut inner: W, key: Option<&str>) -> io::Result<Self> {
        if let Some(key) = key {
            writeln!(inner, "\\restrict {key}")?;
        }
        Ok(Self {
            inner,
            partial: Vec::new(),
            line: 0,
            state: State::Code,
            copying: false,
            pending: false,
            found: None,
        })
    }

    /// The forbidden meta-command found, if any, and the inner writer.
    pub(super) fn finish(mut self) -> (Option<Found>, W) {
        if self.found.is_none() && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            let _ = self.pass(&line, false);
        }
        (self.found, self.inner)
    }

    fn stop(&mut self, command: &[u8]) -> io::Error {
        let text = String::from_utf8_lossy(command);
        let command: String = text.trim().chars().take(60).collect();
        self.found = Some(Found {
            line: self.line,
            command,
        });
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a psql meta-command in the dump",
        )
    }

    /// Screens one line (without its newline) and passes it on.
    fn pass(&mut self, line: &[u8], newline: bool) -> io::Result<()> {
        self.line += 1;
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        if self.copying {
            if body == b"\\." {
                self.copying = false;
            } else if let Some(at) = bad_copy_escape(body) {
                return Err(self.stop(&body[at..]));
            }
        } else {
            let start_of_statement = self.state == State::Code && !self.pending;
            let trimmed = body.trim_ascii_start();
            if start_of_statement && trimmed.first() == Some(&b'\\') {
                let name: Vec<u8> = trimmed[1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .copied()
                    .collect();
                let name = String::from_utf8_lossy(&name).into_owned();
                let rest = &trimmed[1 + name.len()..];
                if DROPPED.contains(&name.as_str()) && !rest.contains(&b'\\') {
                    return Ok(());
                }
                return Err(self.stop(trimmed));
            }
            if let Some(at) = self.lex(body) {
                return Err(self.stop(&body[at..]));
            }
            if start_of_statement && is_copy_from_stdin(body) {
                self.copying = true;
                self.pending = false;
            }
        }
        self.inner.write_all(line)?;
        if newline {
            self.inner.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Advances the lexer over one SQL line; the offset of an unquoted
    /// backslash (a meta-command), if any.
    fn lex(&mut self, line: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < line.len() {
            let c = line[i];
            match &mut self.state {
                State::Code => match c {
                    b'\\' => return Some(i),
                    b'-' if line.get(i + 1) == Some(&b'-') => return None,
                    b'/' if line.get(i + 1) == Some(&b'*') => {
                        self.state = State::Block(1);
                        i += 1;
                    }
                    b'\'' => {
                        let escapes =
                            i > 0 && matches!(line[i - 1], b'e' | b'E') && !word_byte(line, i - 1);
                        self.state = State::Quote { escapes };
                        self.pending = true;
                    }
                    b'"' => {
                        self.state = State::Ident;
                        self.pending = true;
                    }
                    b'$' => {
                        if let Some(tag) = dollar_tag(line, i) {
                            i += tag.len() - 1;
                            self.state = State::Dollar(tag);
                        }
                        self.pending = true;
                    }
                    b';' => self.pending = false,
                    _ if c.is_ascii_whitespace() => {}
                    _ => self.pending = true,
                },
                State::Quote { escapes } => {
                    if c == b'\\' && *escapes {
                        i += 1;
                    } else if c == b'\'' {
                        if line.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            self.state = State::Code;
                        }
                    }
                }
                State::Ident => {
                    if c == b'"' {
                        self.state = State::Code;
                    }
                }
                State::Dollar(tag) => {
                    if line[i..].starts_with(tag.as_bytes()) {
                        i += tag.len() - 1;
                        self.state = State::Code;
                    }
                }
                State::Block(depth) => {
                    if line[i..].starts_with(b"*/") {
                        *depth -= 1;
                        i += 1;
                        if *depth == 0 {
                            self.state = State::Code;
                        }
                    } else if line[i..].starts_with(b"/*") {
                        *depth += 1;
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        None
    }
}

/// Whether the byte at `at` continues an identifier (so an `E` before a
/// quote is part of a word, not a string prefix).
fn word_byte(line: &[u8], at: usize) -> bool {
    at > 0 && (line[at - 1].is_ascii_alphanumeric() || line[at - 1] == b'_')
}

/// The `$tag$` opening a dollar-quoted string at `at`, if it is one.
fn dollar_tag(line: &[u8], at: usize) -> Option<String> {
    if at > 0 && (line[at - 1].is_ascii_alphanumeric() || line[at - 1] == b'_') {
        return None;
    }
    let rest = &line[at + 1..];
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    if rest.get(len) != Some(&b'$') || rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some(String::from_utf8_lossy(&line[at..at + len + 2]).into_owned())
}

/// `COPY <table> [(columns)] FROM stdin;` as pg_dump writes it.
fn is_copy_from_stdin(line: &[u8]) -> bool {
    line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;")
}

/// The offset of a backslash in a COPY data line that COPY's text format
/// as PostgreSQL writes it never has (psql would read it as a
/// meta-command, were the COPY refused).
fn bad_copy_escape(line: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' {
            match line.get(i + 1) {
                Some(c) if COPY_ESCAPES.contains(c) => i += 1,
                _ => return Some(i),
            }
        }
        i += 1;
    }
    None
}

impl<W: Write> Write for MetaGuard<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.found.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a psql meta-command in the dump",
            ));
        }
        let mut rest = buf;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            if self.partial.is_empty() {
                self.pass(head, true)?;
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                self.pass(&line, true)?;
            }
            rest = &tail[1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether the psql `version_line` (`psql (PostgreSQL) 15.18 (Debian…)`)
/// knows `\restrict`: 13.22, 14.19, 15.14, 16.10, 17.6, 18 and later.
pub(super) fn knows_restrict(version_line: &str) -> bool {
    let Some(version) = version_line
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
    else {
        return false;
    };
    let mut parts = version.split(['.', '-']).map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match major {
        13 => minor >= 22,
        14 => minor >= 19,
        15 => minor >= 14,
        16 => minor >= 10,
        17 => minor >= 6,
        m => m >= 18,
    }
}

/// A key for `\restrict` no dump can guess: 32 hex digits from the
/// system's random source.
pub(super) fn restrict_key() -> io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(dump: &str) -> (Option<Found>, String) {
        let mut guard = MetaGuard::new(Vec::new(), Some("k")).unwrap();
        for piece in dump.as_bytes().chunks(5) {
            if guard.write_all(piece).is_err() {
                break;
            }
        }
        let (found, out) = guard.finish();
        (found, String::from_utf8(out).unwrap())
    }

    #[test]
    fn what_pg_dump_writes_passes_and_its_own_meta_commands_are_dropped() {
        let dump = "\\restrict abc\nSET standard_conforming_strings = on;\n\
            CREATE FUNCTION f() RETURNS text AS $_$ SELECT '\\!' $_$ LANGUAGE sql;\n\
            COMMENT ON TABLE t IS 'a \\ b';\nSELECT E'it\\'s \\\\';\n\
            /* a \\ comment */ -- and \\ this\n\
            COPY public.t (a, b) FROM stdin;\n\\N\tx\\ty\\\\z\n1\t\\\\.\\n\n\\.\n\
            \\connect kastell_drill\n\\unrestrict abc\n";
        let (found, out) = screen(dump);
        assert_eq!(found, None, "{out}");
        assert!(out.starts_with("\\restrict k\nSET "), "{out}");
        assert!(
            !out.contains("\\connect") && !out.contains("\\unrestrict"),
            "{out}"
        );
        assert!(out.contains("1\t\\\\.\\n\n\\.\n"), "{out}");
    }

    #[test]
    fn other_meta_commands_stop_the_restore() {
        for (dump, line) in [
            ("SELECT 1;\n\\! touch /tmp/x\n", 2),
            ("SELECT 1; \\! id\n", 1),
            ("SELECT 'a'\n\\connect other\n", 2),
            (
                "COPY public.t (a) FROM stdin;\n1\n\\! touch /tmp/x\n\\.\n",
                3,
            ),
            ("COPY public.t (a) FROM stdin;\nx \\o /tmp/y\n\\.\n", 2),
            ("\\o /tmp/out\n", 1),
            ("SELECT $$ a $$ \\copy t to '/f'\n", 1),
        ] {
            let (found, out) = screen(dump);
            let found = found.unwrap_or_else(|| panic!("{dump:?} passed: {out}"));
            assert_eq!(found.line, line, "{dump:?}");
            assert!(!out.contains("touch") && !out.contains("/tmp/"), "{out}");
        }
    }

    #[test]
    fn restrict_is_known_from_the_fixed_minor_releases() {
        assert!(knows_restrict(
            "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        ));
        assert!(knows_restrict("psql (PostgreSQL) 18.1"));
        assert!(!knows_restrict("psql (PostgreSQL) 15.13"));
        assert!(!knows_restrict("psql (PostgreSQL) 12.22"));
        assert!(!knows_restrict("nonsense"));
    }
}
