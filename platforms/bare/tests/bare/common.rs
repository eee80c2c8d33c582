//! The fake bare host (from the testkit) and helpers for the real-SSH tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use kastell_bare::BarePlatform;
pub use kastell_core::types::Privilege;
pub use kastell_testkit::platform::BareHost as Host;

/// A bare platform on `host` with `privilege` and `backup_paths`.
pub trait HostPlatform {
    /// Builds it.
    fn platform(&self, privilege: Privilege, backup_paths: &[&str]) -> BarePlatform;
}

impl HostPlatform for Host {
    fn platform(&self, privilege: Privilege, backup_paths: &[&str]) -> BarePlatform {
        BarePlatform::new(self.context(privilege, backup_paths)).unwrap()
    }
}

/// Everything under `dir`: relative path → (kind, content or link target,
/// mode), to prove a tree did not change.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (char, Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (char, Vec<u8>, u32)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            out.insert(
                rel,
                ('l', target.to_string_lossy().as_bytes().to_vec(), mode),
            );
        } else if meta.is_dir() {
            out.insert(rel, ('d', Vec::new(), mode));
            walk(base, &path, out);
        } else {
            out.insert(rel, ('f', fs::read(&path).unwrap(), mode));
        }
    }
}

/// The member names of a tar archive (via the local `tar -t`).
pub fn tar_members(bytes: &[u8]) -> Vec<String> {
    use std::io::Write;
    let mut child = Command::new("tar")
        .arg("-tf")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect()
}
