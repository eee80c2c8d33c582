//! The drill of a configuration archive (a bare server's backup): unpacked
//! into a temporary directory here, then the configurations it holds that
//! this machine can validate are validated on the unpacked copy:
//! `sshd -t` for `etc/ssh/sshd_config` (with a throwaway host key) and
//! `nginx -t` for `etc/nginx/nginx.conf`. A validator that is not
//! installed here is reported as skipped, never as passed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use kastell_core::env::scrubbed_command;
use kastell_core::types::{ArtifactRecord, ArtifactSource};
use kastell_core::{Error, Result};

use super::{ArtifactDrill, DrillCheck, millis_since, unpack_tar};

/// Where a program is installed, from the usual system directories.
fn installed(program: &str) -> Option<PathBuf> {
    [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ]
    .iter()
    .map(|dir| Path::new(dir).join(program))
    .find(|p| p.is_file())
}

/// Runs `command`; `(passed, what it printed)`.
fn validate(mut command: Command) -> Result<(bool, String)> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running a validator", e))?;
    let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok((out.status.success(), text))
}

fn count_files(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

fn sshd_check(root: &Path, scratch: &Path) -> Result<Option<DrillCheck>> {
    let config = root.join("etc/ssh/sshd_config");
    if !config.is_file() {
        return Ok(None);
    }
    let Some(sshd) = installed("sshd") else {
        return Ok(Some(DrillCheck::skipped(
            "sshd -t",
            "sshd is not installed here",
        )));
    };
    let key = scratch.join("drill_host_key");
    let mut keygen = scrubbed_command("ssh-keygen");
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key);
    let (made, text) = validate(keygen)?;
    if !made {
        return Ok(Some(DrillCheck::skipped(
            "sshd -t",
            &format!("no throwaway host key could be made: {text}"),
        )));
    }
    let mut test = scrubbed_command(sshd);
    test.arg("-t").arg("-f").arg(&config).arg("-h").arg(&key);
    let (passed, text) = validate(test)?;
    let detail = if passed {
        "etc/ssh/sshd_config is valid".to_owned()
    } else {
        format!("etc/ssh/sshd_config is refused: {text}")
    };
    Ok(Some(DrillCheck::ran("sshd -t", passed, detail)))
}

fn nginx_check(root: &Path) -> Result<Option<DrillCheck>> {
    let config = root.join("etc/nginx/nginx.conf");
    if !config.is_file() {
        return Ok(None);
    }
    let Some(nginx) = installed("nginx") else {
        return Ok(Some(DrillCheck::skipped(
            "nginx -t",
            "nginx is not installed here",
        )));
    };
    let mut test = scrubbed_command(nginx);
    test.args(["-t", "-q", "-c"])
        .arg(&config)
        .arg("-p")
        .arg(root.join("etc/nginx"));
    let (passed, text) = validate(test)?;
    let detail = if passed {
        "etc/nginx/nginx.conf is valid".to_owned()
    } else {
        format!("etc/nginx/nginx.conf is refused: {text}")
    };
    Ok(Some(DrillCheck::ran("nginx -t", passed, detail)))
}

/// Drills the archive `record`: unpack, then validate what can be.
pub(super) fn drill(source: &dyn ArtifactSource, record: &ArtifactRecord) -> Result<ArtifactDrill> {
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("kastell-drill-")
        .tempdir()
        .map_err(|e| Error::io("creating the drill directory", e))?;
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).map_err(|e| Error::io("creating the drill directory", e))?;
    let unpacked = unpack_tar(source, record, &root)?;
    let mut checks = vec![DrillCheck::ran(
        "unpack",
        unpacked.is_ok(),
        match &unpacked {
            Ok(()) => format!("{} files unpacked", count_files(&root)),
            Err(why) => format!("tar could not unpack it: {why}"),
        },
    )];
    if unpacked.is_ok() {
        checks.extend(sshd_check(&root, scratch.path())?);
        checks.extend(nginx_check(&root)?);
    }
    Ok(ArtifactDrill {
        artifact: record.name.clone(),
        target: "a temporary directory".into(),
        checks,
        duration_ms: millis_since(started),
    })
}
