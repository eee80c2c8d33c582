//! Counting the rows of each table in a SQL dump's data: the lines of every
//! `COPY <table> (...) FROM stdin;` block up to its `\.` (COPY's text
//! format escapes newlines inside values, so one line is one row).

use std::collections::BTreeMap;
use std::io::{self, Write};

/// A [`Write`] that parses SQL text as it streams by and counts the rows
/// of each `COPY` block, by the table name as the dump writes it
/// (`public.items`, `public."Mixed Case"`).
#[derive(Debug, Default)]
pub(crate) struct CopyCounter {
    partial: Vec<u8>,
    current: Option<String>,
    counts: BTreeMap<String, u64>,
}

impl CopyCounter {
    /// Rows per table, once everything was written.
    pub(crate) fn finish(mut self) -> BTreeMap<String, u64> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        self.counts
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match &self.current {
            Some(_) if line == b"\\." => self.current = None,
            Some(table) => {
                if let Some(n) = self.counts.get_mut(table) {
                    *n += 1;
                }
            }
            None => {
                if let Some(table) = copy_target(line) {
                    self.counts.entry(table.clone()).or_insert(0);
                    self.current = Some(table);
                }
            }
        }
    }
}

/// The table of a `COPY <table> [(columns)] FROM stdin;` line.
fn copy_target(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix("COPY ")?;
    if !text.ends_with("FROM stdin;") {
        return None;
    }
    // The name ends at the first space outside double quotes.
    let mut quoted = false;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ' ' && !quoted
        })
        .map(|(i, _)| i)?;
    Some(rest[..end].to_owned())
}

impl Write for CopyCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            if self.partial.is_empty() {
                self.line(head);
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                self.line(&line);
            }
            rest = &tail[1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_each_copy_block_are_counted_across_chunk_boundaries() {
        let dump = "SET x = 1;\n\
            COPY public.items (id, name) FROM stdin;\n1\ta\n2\tb\\nc\n3\t\\N\n\\.\n\
            COPY public.\"Mixed Case\" (id) FROM stdin;\n\\.\n\
            COPY public.\"with space\" (id) FROM stdin;\n7\n\\.\n\
            SELECT 'COPY x FROM stdin; is not a copy';\n";
        for chunk in [1, 3, 7, dump.len()] {
            let mut counter = CopyCounter::default();
            for piece in dump.as_bytes().chunks(chunk) {
                counter.write_all(piece).unwrap();
            }
            let counts = counter.finish();
            assert_eq!(counts.get("public.items"), Some(&3), "chunk {chunk}");
            assert_eq!(counts.get("public.\"Mixed Case\""), Some(&0));
            assert_eq!(counts.get("public.\"with space\""), Some(&1));
            assert_eq!(counts.len(), 3, "{counts:?}");
        }
    }
}
