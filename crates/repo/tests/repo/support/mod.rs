//! What the repository tests share: stock restic, a real S3 server
//! (SeaweedFS, installed by `.ci/setup`) and test data.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod sftp;

use std::process::{Command, Output};

use kastell_repo::StoredEntry;
use kastell_repo::backend::S3Credentials;
pub use kastell_testkit::s3::{BUCKET, SeaweedS3};

/// The credentials of `server` as the repository takes them.
pub fn credentials(server: &SeaweedS3) -> S3Credentials {
    S3Credentials {
        access_key_id: server.credentials.access_key_id.clone(),
        secret_access_key: server.credentials.secret_access_key.clone(),
    }
}

/// The password every test repository is created with.
pub const PASSWORD: &str = "correct horse battery staple";

/// `len` bytes that do not compress (xorshift from `seed`).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Runs stock `restic` with `args` on `repo` (a path or `s3:` URL) opened
/// with `password`, and S3 credentials when given.
pub fn restic(repo: &str, password: &str, s3: Option<&S3Credentials>, args: &[&str]) -> Output {
    let mut command = Command::new("restic");
    command
        .arg("--repo")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", password)
        .env("TZ", "UTC")
        .env_remove("RESTIC_REPOSITORY")
        .env_remove("RESTIC_PASSWORD_FILE");
    if let Some(s3) = s3 {
        command
            .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key);
    }
    command
        .output()
        .expect("restic is installed (.ci/setup installs it)")
}

/// Like [`restic`], and fails the test with restic's stderr unless it
/// succeeded.
pub fn restic_ok(repo: &str, password: &str, s3: Option<&S3Credentials>, args: &[&str]) -> Vec<u8> {
    let output = restic(repo, password, s3, args);
    assert!(
        output.status.success(),
        "restic {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Every file under `dir`, at any depth.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A file named `name` holding `data`, to store as one entry of a snapshot.
pub fn entry(name: &str, data: impl AsRef<[u8]>) -> StoredEntry {
    let data = data.as_ref().to_vec();
    StoredEntry {
        name: name.to_owned(),
        size: data.len() as u64,
        reader: Box::new(std::io::Cursor::new(data)),
        key: None,
    }
}

/// The tags kastell gives the snapshot of backup `backup`.
pub fn tags(backup: &str) -> Vec<String> {
    vec![format!("backup:{backup}")]
}
