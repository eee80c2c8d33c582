//! A real full disk for tests: a small tmpfs mounted on a directory while
//! the value lives (root only; `None` elsewhere, and the test says it
//! skipped).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tmpfs mounted on a directory; unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Creates `dir` if needed and mounts a tmpfs of `size` (`2m`) on it,
    /// mode 0700. `None` when this process may not mount (not root).
    pub fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
