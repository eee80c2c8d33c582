//! `kastell demo`: the real code against a local sandbox, with no account,
//! no network and nothing left behind.
//!
//! It starts a private OpenSSH server on 127.0.0.1, registers it in a
//! throwaway fleet store, runs the doctor against it (trusting and pinning
//! its host key on first use), shows a changed host key being refused, and
//! walks the SAFE_MODE policy an AI agent runs under.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kastell_core::{Error, Registry, RemoteCommand, Result, Transport};
use kastell_ssh::SshTransport;
use kastell_ssh::sandbox::LocalSshd;

use crate::doctor::{ServerCheck, diagnose};
use crate::env::Env;
use crate::policy::{Operation, Policy, Surface};
use crate::security_log::SecurityLog;
use crate::store::{FleetStore, ServerRecord, SshSettings};

/// The sandbox server's name in the demo store.
pub const SANDBOX_SERVER: &str = "sandbox-1";

fn say(out: &mut dyn Write, text: impl AsRef<str>) -> Result<()> {
    writeln!(out, "{}", text.as_ref()).map_err(|e| Error::io("writing the demo output", e))
}

fn describe(out: &mut dyn Write, check: &ServerCheck) -> Result<()> {
    if !check.reachable {
        let why = check
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or("unknown");
        return say(out, format!("   not reachable: {why}"));
    }
    say(
        out,
        format!(
            "   reachable as {}@{}:{}; connect {} ms, command round trip {} ms",
            check.user,
            check.ip,
            check.port,
            check.connect_ms.unwrap_or(0),
            check.latency_ms.unwrap_or(0)
        ),
    )?;
    if let Some(key) = &check.host_key {
        say(
            out,
            format!("   host key {} ({})", key.fingerprint, key.key_type),
        )?;
        if let Some(warning) = &key.warning {
            say(out, format!("   warning: {warning}"))?;
        }
    }
    if let Some(boot) = &check.boot_id {
        say(
            out,
            format!("   boot id {boot} (a reboot changes it; kastell uses it to prove reboots)"),
        )?;
    }
    Ok(())
}

fn sandbox_record(sshd: &LocalSshd, name: &str) -> ServerRecord {
    let mut record = ServerRecord::new(format!("manual-{}", std::process::id()), name, sshd.host());
    record.mode = "bare".into();
    record.ssh = Some(SshSettings {
        user: Some(sshd.user().to_owned()),
        port: Some(sshd.port()),
        identity_file: Some(sshd.ed25519_key().display().to_string()),
        host_key: None,
    });
    record
}

/// Runs the demo, narrating to `out`. Uses `dir` as the kastell directory
/// when given (kept afterwards), else a temporary one (removed).
pub async fn run(dir: Option<PathBuf>, out: &mut dyn Write) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::Builder::new()
                .prefix("kastell-demo-")
                .permissions(std::fs::Permissions::from_mode(0o700))
                .tempdir()
                .map_err(|e| Error::io("creating the demo directory", e))?;
            temp.path().to_path_buf()
        }
    };
    say(
        out,
        "kastell demo: a private sshd on 127.0.0.1 and a throwaway fleet store; no account, no network.\n",
    )?;

    let sshd = tokio::task::spawn_blocking(LocalSshd::start)
        .await
        .map_err(|e| Error::unexpected(format!("sandbox start failed: {e}")))??;
    say(
        out,
        format!(
            "1. Sandbox host: OpenSSH listening on {}:{}, login {} with a fresh ed25519 key",
            sshd.host(),
            sshd.port(),
            sshd.user()
        ),
    )?;

    let store = FleetStore::open(&dir)?;
    let record = store.add(sandbox_record(&sshd, SANDBOX_SERVER))?;
    say(
        out,
        format!(
            "2. Fleet store {}: added {} ({}, {}), no host key pinned yet",
            store.path().display(),
            record.name,
            record.id,
            record.mode
        ),
    )?;

    let env = Env::process();
    say(out, format!("3. kastell doctor {SANDBOX_SERVER}:"))?;
    let report = diagnose(&store, &env, Some(SANDBOX_SERVER)).await?;
    if let Some(check) = &report.server {
        describe(out, check)?;
    }
    let pinned = store
        .find(SANDBOX_SERVER)?
        .and_then(|r| r.host_key().map(str::to_owned))
        .unwrap_or_else(|| "nothing".to_owned());
    say(
        out,
        format!(
            "   servers.json now pins {pinned}; the sandbox's own key is {}",
            sshd.host_key_fingerprint()
        ),
    )?;

    say(
        out,
        "4. The same host, checked against a different pinned key (what a rebuilt or intercepted server looks like):",
    )?;
    let other_key = kastell_ssh::sandbox::fingerprint_of(&sshd.dir().join("stranger_ed25519.pub"))?;
    let rekeyed = SshTransport::new(sshd.ssh_config().with_pinned_host_key(other_key));
    match rekeyed
        .exec(&RemoteCommand::fixed("true"), Duration::from_secs(10))
        .await
    {
        Ok(_) => say(out, "   unexpectedly accepted")?,
        Err(e) => {
            say(out, format!("   refused ({}): {}", e.kind(), e.message()))?;
            if let Some(hint) = e.hint() {
                say(out, format!("   hint: {hint}"))?;
            }
        }
    }

    say(
        out,
        "5. SAFE_MODE, the switch that keeps an AI agent from destroying anything (on by default over MCP):",
    )?;
    let policy = Policy::new(
        Env::from_pairs([("HOME", "/nonexistent")]),
        Some(SecurityLog::in_dir(&dir)),
    );
    let sandbox = store.find(SANDBOX_SERVER)?;
    for op in [
        Operation::BackupCreate,
        Operation::BackupList,
        Operation::BackupRestore,
        Operation::SnapshotCreate,
        Operation::Update,
        Operation::Restart,
        Operation::Maintain,
    ] {
        let line = match policy.check(op, Surface::Mcp, sandbox.as_ref(), |_| false) {
            Ok(_) => format!("   {:<17} allowed", op.as_str()),
            Err(e) => format!("   {:<17} refused: {}", op.as_str(), e.message()),
        };
        say(out, line)?;
    }
    say(
        out,
        format!(
            "   every refusal was appended to {}",
            dir.join("security.log").display()
        ),
    )?;

    backups(&store, &sshd, out).await?;

    let registry = Registry::global();
    let list = |ids: Vec<&str>| {
        if ids.is_empty() {
            "none compiled in".to_owned()
        } else {
            ids.join(", ")
        }
    };
    say(
        out,
        format!(
            "8. This build: providers {}; platforms {}",
            list(registry.provider_ids()),
            list(registry.platform_ids())
        ),
    )?;
    say(
        out,
        "\nDone: the sandbox sshd is stopped and the demo store removed.",
    )?;
    drop(sshd);
    Ok(())
}

/// Step 7: a backup of the sandbox host's configuration (a fake root the
/// sandbox user owns), an accident, and a verified restore, through the
/// same operations the CLI and the MCP server run.
async fn backups(store: &FleetStore, sshd: &LocalSshd, out: &mut dyn Write) -> Result<()> {
    // The store directory is private (0700); the sandbox's login user needs
    // a root it can reach, so it gets a temporary directory of its own.
    let base = tempfile::Builder::new()
        .prefix("kastell-sandbox-root-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .map_err(|e| Error::io("creating the sandbox root", e))?;
    let root = base.path().join("root");
    let crontab = root.join("etc/crontab");
    write_file(&crontab, "0 3 * * * root /usr/local/bin/nightly-report\n")?;
    write_file(
        &root.join("etc/ufw/ufw.conf"),
        "ENABLED=yes\nLOGLEVEL=low\n",
    )?;
    hand_over(&root, sshd.user())?;
    let root_text = root.display().to_string();
    store.update(SANDBOX_SERVER, |r| {
        r.extra.insert(
            crate::ops::PLATFORM_OPTIONS_KEY.to_owned(),
            serde_json::json!({ "root": root_text, "sudo": "never" }),
        );
    })?;
    let ctx = crate::ops::Context::new(
        Env::from_pairs([("KASTELL_SAFE_MODE", "false")]),
        store.clone(),
        Surface::Cli,
    );
    say(
        out,
        "7. Backups, through the same operations the CLI and the MCP server run:",
    )?;
    let created = crate::ops::backup_create(&ctx, Some(SANDBOX_SERVER))
        .await
        .map_err(op_error)?;
    say(
        out,
        format!(
            "   backup {}: {} (missing paths skipped: {})",
            created.backup_id,
            created.files.join(", "),
            created.skipped.join(", ")
        ),
    )?;
    write_file(&crontab, "# an accident emptied the crontab\n")?;
    hand_over(&root, sshd.user())?;
    say(out, "   the crontab was then emptied by accident")?;
    let restored = crate::ops::backup_restore(&ctx, Some(SANDBOX_SERVER), None)
        .await
        .map_err(op_error)?;
    say(
        out,
        format!(
            "   restored the newest backup {} (a safety backup of the damaged state was taken first):",
            restored.backup_id
        ),
    )?;
    for step in &restored.steps {
        let detail = step.detail.as_deref().unwrap_or("");
        say(
            out,
            format!("     {:<22} {:?} {detail}", step.name, step.status),
        )?;
    }
    let back =
        std::fs::read_to_string(&crontab).map_err(|e| Error::io("reading the crontab", e))?;
    say(
        out,
        format!("   crontab after the restore: {}", back.trim()),
    )?;
    let listed = crate::ops::backup_list(&ctx, Some(SANDBOX_SERVER))
        .await
        .map_err(op_error)?;
    say(
        out,
        format!(
            "   {} backups listed, newest first, each checksummed",
            listed.backup_count
        ),
    )
}

fn op_error(e: crate::ops::OpError) -> Error {
    let mut error = Error::unexpected(e.error.clone());
    if let Some(hint) = &e.hint {
        error = error.with_hint(hint.clone());
    }
    error
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Gives the fake root to the sandbox's login user (a no-op when that user
/// is the current one).
fn hand_over(root: &Path, user: &str) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let status = kastell_core::env::scrubbed_command("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(root)
        .status()
        .map_err(|e| Error::io("running chown", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::unexpected(format!(
            "chown of {} failed",
            root.display()
        )))
    }
}
