//! A writer that hashes (SHA-256) and counts what passes through it, for
//! the content checksums a push records and a pull or verify compares.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

/// Passes bytes on to `inner`, hashing and counting them.
pub(crate) struct Digesting<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Digesting<W> {
    /// Starts hashing what is written to `inner`.
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the bytes written and their SHA-256 in lower-case
    /// hex.
    pub(crate) fn finish(self) -> (W, u64, String) {
        let hex = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (self.inner, self.size, hex)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `sha256sum`'s text for `(name, hex)` pairs: one `HEX  NAME` line each.
pub(crate) fn checksum_lines<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    entries
        .into_iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// Reads `sha256sum` text back into `(name, hex)` pairs; `None` when a
/// line is not of that form.
pub(crate) fn parse_checksums(text: &str) -> Option<Vec<(String, String)>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (hex, name) = line.split_once("  ")?;
            let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then(|| (name.to_owned(), hex.to_ascii_lowercase()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_sha256sum_and_read_back() {
        let mut d = Digesting::new(Vec::new());
        d.write_all(b"abc").unwrap();
        let (inner, size, hex) = d.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(size, 3);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let text = checksum_lines([("db.dump", hex.as_str())]);
        assert_eq!(
            parse_checksums(&text).unwrap(),
            vec![("db.dump".to_owned(), hex)]
        );
        assert!(parse_checksums("nothex  db.dump\n").is_none());
        assert!(parse_checksums("abc db.dump\n").is_none());
    }
}
