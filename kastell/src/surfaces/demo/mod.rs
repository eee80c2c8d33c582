//! `kastell demo`: the real code against the sandbox fleet, with no
//! account, no root needed, no network and nothing left behind.
//!
//! It starts [`crate::surfaces::sandbox::Sandbox`] (the provider simulators and one
//! private OpenSSH server standing for every host), then walks through what
//! kastell does: the fleet store, the doctor, a changed host key refused,
//! the SAFE_MODE policy an AI agent runs under, a backup with an accident
//! and a verified restore, a provider snapshot, a full maintenance cycle
//! with a proven reboot, a reboot of a manually added server over SSH, and
//! a server destroyed and recovered from its backup at another provider.
//! Every step runs through the same operations the CLI and MCP server use.

#[allow(unused_imports)]
use crate::ops::Operation as _;
use crate::ops::{
    BackupCreateOp, BackupListOp, BackupRestoreOp, MaintainOp, RestartOp, SnapshotCreateOp,
    SnapshotDeleteOp, UpdateOp,
};
mod narration;

use std::path::PathBuf;
use std::time::Duration;

use kastell_core::{Error, Registry, RemoteCommand, Result, Transport};
use kastell_ssh::SshTransport;
use kastell_ssh::sandbox::paas::{DEMO_DATABASE, DEMO_VOLUME};

use crate::env::Env;
use crate::ops::{self, Context, MaintainOptions, Step};
use crate::policy::{Policy, Surface};
use crate::state::security_log::SecurityLog;
use crate::surfaces::doctor::{ServerCheck, diagnose};
use crate::surfaces::sandbox::{MANUAL_SERVER, Sandbox, SandboxPlan, SandboxServer};

pub(crate) use narration::Narration;

fn describe(out: &mut Narration<'_>, check: &ServerCheck) -> Result<()> {
    if !check.reachable {
        let why = check
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or("unknown");
        return out.say(format!("   not reachable: {why}"));
    }
    out.say(format!(
        "   reachable as {}@{}:{}; connect {} ms, command round trip {} ms",
        check.user,
        check.ip,
        check.port,
        check.connect_ms.unwrap_or(0),
        check.latency_ms.unwrap_or(0)
    ))?;
    if let Some(key) = &check.host_key {
        out.say(format!(
            "   host key {} ({})",
            key.fingerprint, key.key_type
        ))?;
        if let Some(warning) = &key.warning {
            out.say(format!("   warning: {warning}"))?;
        }
    }
    if let Some(boot) = &check.boot_id {
        out.say(format!(
            "   boot id {boot} (a reboot changes it; kastell uses it to prove reboots)"
        ))?;
    }
    Ok(())
}

/// Runs the demo, narrating to `out`. Uses `dir` as the kastell directory
/// when given (kept afterwards), else a temporary one (removed); the
/// servers run `platform` (a registry id) when given, else bare. Refuses a
/// platform this build does not register.
pub(crate) async fn run(
    dir: Option<PathBuf>,
    platform: Option<String>,
    out: &mut Narration<'_>,
) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(dir) => dir,
        None => {
            temp = kastell_ssh::sandbox::owner::tempdir(crate::surfaces::sandbox::DEMO_DIR_PREFIX)?;
            temp.path().to_path_buf()
        }
    };
    out.note("kastell demo: provider API simulators and a private sshd on loopback; no account, no network.\n",
    )?;
    let plan = SandboxPlan {
        platform,
        ..SandboxPlan::default()
    };
    let sandbox = Sandbox::start_with(&dir, &plan).await?;
    let ctx = sandbox.context(
        &Env::from_pairs([("KASTELL_SAFE_MODE", "false")]),
        Surface::Cli,
    );
    introduce(&sandbox, out)?;
    let main = sandbox.showcase()?.clone();
    doctor(&sandbox, &ctx, &main, out).await?;
    host_key_refused(&sandbox, out).await?;
    safe_mode(&ctx, &dir, &main, out)?;
    backups(&sandbox, &ctx, &main, out).await?;
    snapshots(&ctx, &main, out).await?;
    maintenance(&sandbox, &ctx, out).await?;
    manual_restart(&ctx, out).await?;
    recovery(&sandbox, &ctx, &main, out).await?;

    let registry = Registry::global();
    let list = |ids: Vec<&str>| {
        if ids.is_empty() {
            "none compiled in".to_owned()
        } else {
            ids.join(", ")
        }
    };
    out.step(
        11,
        format!(
            "This build: providers {}; platforms {}",
            list(registry.provider_ids()),
            list(registry.platform_ids())
        ),
    )?;
    out.note("\nTry it from an AI agent: `kastell-mcp --sandbox` serves this same fleet over MCP (SAFE_MODE on).\n\
         Done: the simulators and the sandbox sshd are stopped and the demo store removed.",
    )?;
    drop(sandbox);
    Ok(())
}

/// Steps 1 and 2: what runs and what the store holds.
fn introduce(sandbox: &Sandbox, out: &mut Narration<'_>) -> Result<()> {
    let endpoints = sandbox.endpoints();
    if endpoints.is_empty() {
        out.step(
            1,
            "Sandbox: no cloud provider compiled in, so no API simulator runs",
        )?;
    } else {
        out.step(1, "Sandbox: an API simulator per provider, on loopback:")?;
        for (id, endpoint) in &endpoints {
            out.say(format!("   {id:<13} {endpoint}"))?;
        }
    }
    let sshd = sandbox.sshd();
    out.say(format!(
            "   and one OpenSSH server (port {}, login {}) standing for {} hosts, each its own loopback address",
            sshd.port(),
            sshd.user(),
            sandbox.servers().len()
        ),
    )?;
    out.step(
        2,
        format!(
            "Fleet store {}: every server {}, its host key pinned",
            sandbox.store().path().display(),
            sandbox.platform()
        ),
    )?;
    for server in sandbox.servers() {
        let origin = match server.provider {
            Some(provider) => format!("{provider} server {}", server.server_id),
            None => "added manually (no provider)".to_owned(),
        };
        out.say(format!(
            "   {:<18} {:<12} {origin}",
            server.name, server.address
        ))?;
    }
    Ok(())
}

/// Step 3: the doctor on one server.
async fn doctor(
    sandbox: &Sandbox,
    ctx: &Context,
    server: &SandboxServer,
    out: &mut Narration<'_>,
) -> Result<()> {
    out.step(3, format!("kastell doctor {}:", server.name))?;
    let report = diagnose(sandbox.store(), &ctx.env, Some(&server.name)).await?;
    if let Some(check) = &report.server {
        describe(out, check)?;
    }
    Ok(())
}

/// Step 4: the same host behind a different pinned key.
async fn host_key_refused(sandbox: &Sandbox, out: &mut Narration<'_>) -> Result<()> {
    out.step(4, "The same host, checked against a different pinned key (what a rebuilt or intercepted server looks like):",
    )?;
    let sshd = sandbox.sshd();
    let other_key = kastell_ssh::sandbox::fingerprint_of(&sshd.dir().join("stranger_ed25519.pub"))?;
    let rekeyed = SshTransport::new(sshd.ssh_config().with_pinned_host_key(other_key));
    match rekeyed
        .exec(&RemoteCommand::fixed("true"), Duration::from_secs(10))
        .await
    {
        Ok(_) => out.say("   unexpectedly accepted"),
        Err(e) => {
            out.say(format!("   refused ({}): {}", e.kind(), e.message()))?;
            match e.hint() {
                Some(hint) => out.say(format!("   hint: {hint}")),
                None => Ok(()),
            }
        }
    }
}

/// Step 5: what SAFE_MODE allows an agent on a cloud server.
fn safe_mode(
    ctx: &Context,
    dir: &std::path::Path,
    server: &SandboxServer,
    out: &mut Narration<'_>,
) -> Result<()> {
    out.step(5, format!(
            "SAFE_MODE, the switch that keeps an AI agent from destroying anything (on by default over MCP), on {}:",
            server.name
        ),
    )?;
    let policy = Policy::new(
        Env::from_pairs([("HOME", "/nonexistent")]),
        Some(SecurityLog::in_dir(dir)),
    );
    let record = ctx.store.find(&server.name)?;
    for op in [
        BackupCreateOp::ID,
        BackupListOp::ID,
        BackupRestoreOp::ID,
        SnapshotCreateOp::ID,
        SnapshotDeleteOp::ID,
        UpdateOp::ID,
        RestartOp::ID,
        MaintainOp::ID,
    ] {
        let line = match policy.check(op, Surface::Mcp, record.as_ref(), |p| ctx.token_present(p)) {
            Ok(_) => format!("   {:<17} allowed", op.as_str()),
            Err(e) => format!("   {:<17} refused: {}", op.as_str(), e.message()),
        };
        out.say(line)?;
    }
    out.say(format!(
        "   every refusal was appended to {}",
        dir.join("security.log").display()
    ))
}

/// Step 6: a backup, an accident and a verified restore.
async fn backups(
    sandbox: &Sandbox,
    ctx: &Context,
    server: &SandboxServer,
    out: &mut Narration<'_>,
) -> Result<()> {
    out.step(
        6,
        format!(
            "Backups of {}, through the same operations the CLI and the MCP server run:",
            server.name
        ),
    )?;
    let created = ops::backup_create(ctx, Some(&server.name))
        .await
        .map_err(op_error)?;
    out.say(format!(
        "   backup {}: {} (paths this host lacks, skipped: {})",
        created.backup_id,
        created.files.join(", "),
        created.skipped.join(", ")
    ))?;
    let apps = sandbox.hosts().platform_running(server.address);
    if apps {
        sandbox
            .hosts()
            .psql(server.address, DEMO_DATABASE, "DROP TABLE tags")?;
        out.say("   app blog db's table tags was then dropped by accident")?;
    } else {
        sandbox.hosts().write(
            server.address,
            "etc/crontab",
            "# an accident emptied the crontab\n",
        )?;
        out.say("   the crontab was then emptied by accident")?;
    }
    let restored = ops::backup_restore(ctx, Some(&server.name), None)
        .await
        .map_err(op_error)?;
    out.say(format!(
        "   restored the newest backup {} (a safety backup of the damaged state was taken first):",
        restored.backup_id
    ))?;
    show_steps(out, &restored.steps)?;
    if apps {
        let tags =
            sandbox
                .hosts()
                .psql(server.address, DEMO_DATABASE, "SELECT count(*) FROM tags")?;
        out.say(format!("   app blog db after the restore: {tags} tags"))?;
    } else {
        let crontab = sandbox.hosts().root(server.address)?.join("etc/crontab");
        let back =
            std::fs::read_to_string(&crontab).map_err(|e| Error::io("reading the crontab", e))?;
        out.say(format!(
            "   crontab after the restore: {}",
            back.lines().last().unwrap_or("").trim()
        ))?;
    }
    let listed = ops::backup_list(ctx, Some(&server.name))
        .await
        .map_err(op_error)?;
    out.say(format!(
        "   {} backups listed, newest first, each checksummed",
        listed.backup_count
    ))
}

/// Step 7: a provider snapshot taken, listed and deleted.
async fn snapshots(ctx: &Context, server: &SandboxServer, out: &mut Narration<'_>) -> Result<()> {
    if server.provider.is_none() {
        return out.skip(7, "Snapshots: no cloud provider compiled in, skipped");
    }
    out.step(
        7,
        format!(
            "A provider snapshot of {}, awaited until available:",
            server.name
        ),
    )?;
    let created = ops::snapshot_create(ctx, Some(&server.name))
        .await
        .map_err(op_error)?;
    let size = created
        .snapshot
        .size_gb
        .map_or_else(|| "size unknown".to_owned(), |gb| format!("{gb} GB"));
    out.say(format!(
        "   snapshot {} ({}, {size}); {}",
        created.snapshot.id, created.snapshot.status, created.cost_estimate
    ))?;
    let listed = ops::snapshot_list(ctx, Some(&server.name))
        .await
        .map_err(op_error)?;
    out.say(format!(
        "   {} snapshot(s) of this server listed (other servers' snapshots are never shown)",
        listed.snapshot_count
    ))?;
    ops::snapshot_delete(ctx, Some(&server.name), &created.snapshot.id)
        .await
        .map_err(op_error)?;
    out.say(format!("   snapshot {} deleted", created.snapshot.id))
}

/// Step 8: a full maintenance cycle on every cloud server at once.
async fn maintenance(sandbox: &Sandbox, ctx: &Context, out: &mut Narration<'_>) -> Result<()> {
    let clouds: Vec<&SandboxServer> = sandbox
        .servers()
        .iter()
        .filter(|s| s.provider.is_some())
        .collect();
    let Some(first) = clouds.first() else {
        return out.skip(
            8,
            "Maintenance of cloud servers: no cloud provider compiled in, skipped",
        );
    };
    out.step(8, format!(
            "Maintenance of the {} cloud servers at once (status, package upgrade, health, reboot through the provider's API, final check):",
            clouds.len()
        ),
    )?;
    let tasks: Vec<_> = clouds
        .iter()
        .map(|server| {
            let ctx = ctx.clone();
            let name = server.name.clone();
            tokio::spawn(async move {
                ops::maintain(&ctx, Some(&name), MaintainOptions::default()).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(
            task.await
                .map_err(|e| Error::unexpected(format!("a maintenance task failed: {e}")))?,
        );
    }
    for (server, result) in clouds.iter().zip(results) {
        match result {
            Ok(done) => {
                let total: u64 = done.steps.iter().map(|s| s.duration_ms).sum();
                out.say(format!(
                    "   {:<18} {} in {total} ms",
                    server.name, done.message
                ))?;
                if server.name == first.name {
                    show_steps(out, &done.steps)?;
                }
            }
            Err(e) => out.say(format!("   {:<18} failed: {}", server.name, e.error))?,
        }
    }
    Ok(())
}

/// Step 9: the manually added server has no provider; it reboots over SSH.
async fn manual_restart(ctx: &Context, out: &mut Narration<'_>) -> Result<()> {
    out.step(9, format!(
            "Restart of {MANUAL_SERVER}, which has no provider API: a reboot over SSH, proven by the boot id:"
        ),
    )?;
    let done = ops::restart(ctx, Some(MANUAL_SERVER))
        .await
        .map_err(op_error)?;
    out.say(format!("   {}", done.reboot.detail()))
}

/// Step 10: the showcase server is destroyed (its host's files wiped) and
/// recovered from its newest backup onto a new server at another
/// provider, which the simulator creates on one of the sandbox's spare
/// hosts.
async fn recovery(
    sandbox: &Sandbox,
    ctx: &Context,
    server: &SandboxServer,
    out: &mut Narration<'_>,
) -> Result<()> {
    let can_create = |id: &str| {
        Registry::global()
            .provider(id)
            .is_ok_and(|e| e.capability.server_create && e.capability.server_delete)
    };
    let ids: Vec<&str> = sandbox.endpoints().iter().map(|(id, _)| *id).collect();
    let target = ids
        .iter()
        .copied()
        .find(|id| Some(*id) != server.provider && can_create(id))
        .or_else(|| ids.iter().copied().find(|id| can_create(id)));
    let Some(target) = target else {
        return out.skip(
            10,
            "Recovery onto a new server: no simulated provider here can create servers, skipped",
        );
    };
    out.step(
        10,
        format!(
            "{} is destroyed; kastell recover {} --to {target} brings it back from its backup on a new server:",
            server.name, server.name
        ),
    )?;
    let platform = sandbox.hosts().platform_running(server.address);
    sandbox.hosts().destroy(server.address)?;
    out.say(format!(
        "   {}'s files{} are gone (its fake host was wiped)",
        server.name,
        if platform {
            ", its platform and its apps"
        } else {
            ""
        }
    ))?;
    let args = ops::RecoverArgs {
        from: ops::RecoverFrom {
            to: Some(target.to_owned()),
            backup_id: None,
        },
        ..ops::RecoverArgs::default()
    };
    let done = ops::recover(ctx, Some(&server.name), &args)
        .await
        .map_err(op_error)?;
    out.say(format!(
        "   recovered onto {} at {} ({}, {}) in {} ms from backup {}:",
        done.new_server, done.new_ip, done.target, done.price, done.recovery_ms, done.backup_id
    ))?;
    show_steps(out, &done.steps)?;
    let ip: std::net::Ipv4Addr = done
        .new_ip
        .parse()
        .map_err(|_| Error::unexpected(format!("new address {:?}", done.new_ip)))?;
    out.say(format!("   {}", evidence(sandbox, ip)?))?;
    for line in &done.cutover {
        out.say(format!("   {line}"))?;
    }
    Ok(())
}

/// What shows the data is back on the new host at `ip`: the blog's rows
/// and the site's files of a Coolify or Dokploy host's apps, a bare
/// host's crontab.
fn evidence(sandbox: &Sandbox, ip: std::net::Ipv4Addr) -> Result<String> {
    let hosts = sandbox.hosts();
    if hosts.platform_running(ip) {
        let posts = hosts.psql(ip, DEMO_DATABASE, "SELECT count(*) FROM posts")?;
        let tags = hosts.psql(ip, DEMO_DATABASE, "SELECT count(*) FROM tags")?;
        let volume = hosts
            .root(ip)?
            .join(format!("var/lib/docker/volumes/{DEMO_VOLUME}/_data"));
        let photo = std::fs::metadata(volume.join("img/2026/photo.jpg"))
            .map_err(|e| Error::io("reading the site's volume", e))?;
        return Ok(format!(
            "on the new server: {} running, app blog db with {posts} posts and {tags} tags, \
             app site's volume with its {} KiB photo",
            sandbox.platform(),
            photo.len() / 1024
        ));
    }
    let crontab = hosts.root(ip)?.join("etc/crontab");
    let back =
        std::fs::read_to_string(&crontab).map_err(|e| Error::io("reading the crontab", e))?;
    Ok(format!(
        "crontab on the new server: {}",
        back.lines().last().unwrap_or("").trim()
    ))
}

/// Prints each step with its outcome, duration and detail.
fn show_steps(out: &mut Narration<'_>, steps: &[Step]) -> Result<()> {
    for step in steps {
        let detail = step
            .detail
            .as_deref()
            .or(step.error.as_deref())
            .unwrap_or("");
        let status = serde_json::to_value(step.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.say(format!(
            "     {:<22} {status:<8} {:>5} ms  {detail}",
            step.name, step.duration_ms
        ))?;
    }
    Ok(())
}

fn op_error(e: crate::ops::OpError) -> Error {
    let mut error = Error::unexpected(e.error.clone());
    if let Some(hint) = &e.hint {
        error = error.with_hint(hint.clone());
    }
    error
}
