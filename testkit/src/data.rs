//! Deterministic test data and hashing sinks.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// `len` pseudo-random bytes from `seed` (fastrand): they do not
/// compress, so a stored artifact of them is about as large as the data.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    bytes
}

/// A reader of `len` pseudo-random bytes from `seed`, hashing what it hands
/// out so the sender's checksum is known without holding the data.
pub struct RandomReader {
    rng: fastrand::Rng,
    remaining: u64,
    digest: Arc<Mutex<Sha256>>,
}

impl RandomReader {
    /// `len` bytes from `seed`; `digest` receives every byte read.
    pub fn new(seed: u64, len: u64) -> (Self, Arc<Mutex<Sha256>>) {
        let digest = Arc::new(Mutex::new(Sha256::new()));
        (
            Self {
                rng: fastrand::Rng::with_seed(seed),
                remaining: len,
                digest: digest.clone(),
            },
            digest,
        )
    }
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.remaining) as usize;
        self.rng.fill(&mut buf[..n]);
        self.digest.lock().unwrap().update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A writer that only hashes and counts.
#[derive(Clone, Default)]
pub struct HashingWriter {
    state: Arc<Mutex<(Sha256, u64)>>,
}

impl HashingWriter {
    /// A fresh writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hex SHA-256 and length of everything written so far.
    pub fn finish(&self) -> (String, u64) {
        let state = self.state.lock().unwrap();
        (hex(&state.0.clone().finalize()), state.1)
    }
}

impl Write for HashingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut state = self.state.lock().unwrap();
        state.0.update(data);
        state.1 += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of a shared digest.
pub fn digest_hex(digest: &Arc<Mutex<Sha256>>) -> String {
    hex(&digest.lock().unwrap().clone().finalize())
}
