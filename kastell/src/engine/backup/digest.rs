//! A writer that hashes (SHA-256) and counts what passes through it: the
//! content digest a backup records per artifact as it streams in, and
//! what a push, pull or verify compares.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_sha256sum() {
        let mut d = Digesting::new(Vec::new());
        d.write_all(b"abc").unwrap();
        let (inner, size, hex) = d.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(size, 3);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
