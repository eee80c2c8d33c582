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

/// Words the rows of [`app_rows`] are made of: what an application's
/// database holds (statuses, products, places, log-ish phrases).
const APP_WORDS: &[&str] = &[
    "paid",
    "shipped",
    "delivered",
    "pending",
    "refunded",
    "customer",
    "order",
    "invoice",
    "subscription",
    "trial",
    "renewal",
    "coupon",
    "discount",
    "warehouse",
    "berlin",
    "paris",
    "london",
    "madrid",
    "lisbon",
    "vienna",
    "standard",
    "express",
    "priority",
    "deploy",
    "build",
    "container",
    "volume",
    "backup",
    "restore",
    "webhook",
    "retry",
    "timeout",
    "success",
    "failure",
    "started",
    "finished",
    "queued",
    "running",
    "admin",
    "member",
    "viewer",
    "owner",
    "green",
    "blue",
    "large",
    "small",
    "medium",
    "notebook",
    "monitor",
    "keyboard",
    "cable",
    "adapter",
    "charger",
    "license",
    "support",
    "premium",
    "basic",
];

/// `len` bytes of rows as an application's database dumps them (a
/// tab-separated `COPY`: id, account, e-mail, timestamp, amount, a short
/// text and a JSON column), pseudo-random from `seed`. zstd makes them
/// about 3-4x smaller at level 1 and gzip about as much: the
/// compressibility of real application data, unlike md5 hex (2x) or
/// repeated text (100x).
pub fn app_rows(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(len + 512);
    let mut id = 0u64;
    while out.len() < len {
        id += 1;
        let word = |rng: &mut fastrand::Rng| APP_WORDS[rng.usize(..APP_WORDS.len())];
        let text: Vec<&str> = (0..rng.usize(3..12)).map(|_| word(&mut rng)).collect();
        let line = format!(
            "{id}\t{}\tuser{}@{}.example\t2026-{:02}-{:02} {:02}:{:02}:{:02}+00\t{}.{:02}\t{}\t\
             {{\"status\": \"{}\", \"city\": \"{}\", \"items\": {}, \"ref\": \"{:08x}\"}}\n",
            rng.u32(1..40_000),
            rng.u32(1..900_000),
            word(&mut rng),
            rng.u8(1..13),
            rng.u8(1..29),
            rng.u8(0..24),
            rng.u8(0..60),
            rng.u8(0..60),
            rng.u32(0..5_000),
            rng.u8(0..100),
            text.join(" "),
            word(&mut rng),
            word(&mut rng),
            rng.u8(1..20),
            rng.u32(..),
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}
