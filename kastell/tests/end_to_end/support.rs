//! Shared helpers for tests that run the real `kastell` binary.

use std::path::Path;
use std::process::{Command, Stdio};

/// A `kastell` command with a clean environment: only PATH, HOME and
/// KASTELL_DIR (`<dir>/state`), so no SAFE_MODE, token or strict host-key
/// setting from the host leaks in.
pub(crate) fn kastell(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kastell"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

/// Runs `kastell args` against `sandbox`'s store and simulators, off the
/// async runtime.
#[cfg(feature = "sandbox")]
pub(crate) async fn kastell_in(
    sandbox: &kastell::sandbox::Sandbox,
    home: &Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}
