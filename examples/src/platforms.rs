//! The platform examples: a backup and a verified restore through kastell's
//! engine against a local fake host.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use kastell::ServerRecord;
use kastell::engine::backup::{
    BackupEngine, BackupRequest, RestoreOutcome, RestoreRequest, TransferProgress,
};
use kastell_core::{Error, Platform, PlatformContext, Result, Transport};
use kastell_testkit::platform::{BareHost, PaasHost, PaasRoundTrip};

fn say(out: &mut dyn Write, text: impl AsRef<str>) -> Result<()> {
    writeln!(out, "{}", text.as_ref()).map_err(|e| Error::io("writing the example output", e))
}

fn show_outcome(out: &mut dyn Write, outcome: &RestoreOutcome) -> Result<()> {
    for step in &outcome.steps {
        let detail = step
            .detail
            .as_deref()
            .or(step.error.as_deref())
            .unwrap_or("");
        say(
            out,
            format!(
                "  {:<22} {:?} ({} ms) {detail}",
                step.name, step.status, step.duration_ms
            ),
        )?;
    }
    for warning in &outcome.warnings {
        say(out, format!("  warning: {warning}"))?;
    }
    Ok(())
}

async fn back_up(
    engine: &BackupEngine,
    server: &ServerRecord,
    (platform, transport): &(Arc<dyn Platform>, Arc<dyn Transport>),
    out: &mut dyn Write,
) -> Result<kastell_core::types::BackupId> {
    let created = engine
        .create(&BackupRequest {
            server: server.clone(),
            platform: platform.clone(),
            transport: transport.clone(),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await?;
    say(
        out,
        format!(
            "backup {} written to {}:",
            created.id,
            created.path.display()
        ),
    )?;
    for artifact in &created.manifest.artifacts {
        say(
            out,
            format!(
                "  {} ({:?}, {} bytes, sha256 {}...)",
                artifact.name,
                artifact.format,
                artifact.size,
                &artifact.sha256[..12]
            ),
        )?;
    }
    Ok(created.id)
}

async fn restore(
    engine: &BackupEngine,
    server: &ServerRecord,
    (platform, transport): &(Arc<dyn Platform>, Arc<dyn Transport>),
    id: &kastell_core::types::BackupId,
    out: &mut dyn Write,
) -> Result<()> {
    say(
        out,
        format!("restoring {id} (verify, safety backup, stop, restore, start, health):"),
    )?;
    let outcome = engine
        .restore(RestoreRequest {
            server: server.clone(),
            platform: platform.clone(),
            transport: transport.clone(),
            backup_id: id.clone(),
            safety_backup: true,
            host_key: None,
            transfer: TransferProgress::none(),
            health_deadline: Duration::from_secs(30),
        })
        .await;
    show_outcome(out, &outcome)?;
    match outcome.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs the Coolify or Dokploy example: rows are created, backed up,
/// changed, restored and shown.
pub async fn paas_tour(case: PaasRoundTrip, out: &mut dyn Write) -> Result<()> {
    say(
        out,
        "starting a fake host: PostgreSQL behind a `docker` shim, reached over a private sshd on 127.0.0.1",
    )?;
    let host = tokio::task::spawn_blocking(move || PaasHost::start(&case))
        .await
        .map_err(|e| Error::unexpected(format!("the fake host did not start: {e}")))?;
    let db = case.database;
    let fingerprint = host.sshd.ssh().host_key().await?.fingerprint;
    say(out, format!("connected; host key {fingerprint}"))?;
    host.pg.execute(db, "CREATE TABLE apps (id int PRIMARY KEY, name text); INSERT INTO apps VALUES (1,'blog'),(2,'shop'),(3,'wiki');")?;
    let rows = "SELECT string_agg(id || ':' || name, ', ' ORDER BY id) FROM apps";
    say(
        out,
        format!("rows before the backup: {}", host.pg.psql(db, rows)?),
    )?;

    let dir = tempfile::tempdir().map_err(|e| Error::io("creating the backup store", e))?;
    let engine = BackupEngine::new(dir.path());
    let mut server = ServerRecord::new("manual-1", "demo-1", "127.0.0.1");
    server.platform = Some(db.to_owned());
    let on_host = (host.platform.clone(), host.transport.clone());
    let id = back_up(&engine, &server, &on_host, out).await?;

    host.pg.execute(
        db,
        "UPDATE apps SET name = 'oops'; DELETE FROM apps WHERE id = 2;",
    )?;
    say(
        out,
        format!("rows after an accident: {}", host.pg.psql(db, rows)?),
    )?;
    restore(&engine, &server, &on_host, &id, out).await?;
    say(
        out,
        format!("rows after the restore: {}", host.pg.psql(db, rows)?),
    )?;
    let state = host.shim.state();
    say(
        out,
        format!(
            "platform running: {}, database running: {}",
            state.app_running, state.db_running
        ),
    )
}

/// Runs the bare example: config files are backed up, changed and restored,
/// and a backup holding a broken sshd_config is refused.
pub async fn bare_tour(
    build: fn(PlatformContext) -> Result<Arc<dyn Platform>>,
    out: &mut dyn Write,
) -> Result<()> {
    say(
        out,
        "starting a fake bare host: a private sshd on 127.0.0.1 over a fake filesystem root",
    )?;
    let host = tokio::task::spawn_blocking(BareHost::start)
        .await
        .map_err(|e| Error::unexpected(format!("the fake host did not start: {e}")))?;
    host.write_sshd_config("PermitRootLogin prohibit-password\n");
    host.write("etc/crontab", "0 3 * * * root /usr/local/bin/nightly\n");
    host.hand_over();
    let context = host.context(kastell_core::types::Privilege::LoginUser, &[]);
    let transport = context.transport.clone();
    let platform = (build(context)?, transport);

    let dir = tempfile::tempdir().map_err(|e| Error::io("creating the backup store", e))?;
    let engine = BackupEngine::new(dir.path());
    let mut server = ServerRecord::new("manual-2", "bare-1", "127.0.0.1");
    server.mode = "bare".into();
    let id = back_up(&engine, &server, &platform, out).await?;

    host.write("etc/crontab", "# someone emptied the crontab\n");
    restore(&engine, &server, &platform, &id, out).await?;
    let crontab = std::fs::read_to_string(host.path("etc/crontab"))
        .map_err(|e| Error::io("reading the crontab", e))?;
    say(
        out,
        format!("crontab after the restore: {}", crontab.trim()),
    )?;

    say(out, "now a backup whose sshd_config is broken:")?;
    host.write("etc/ssh/sshd_config", "ThisIsNotAnOption yes\n");
    host.hand_over();
    let broken = back_up(&engine, &server, &platform, out).await?;
    host.write_sshd_config("PermitRootLogin prohibit-password\n");
    host.hand_over();
    let before = std::fs::read(host.path("etc/ssh/sshd_config"))
        .map_err(|e| Error::io("reading sshd_config", e))?;
    match restore(&engine, &server, &platform, &broken, out).await {
        Ok(()) => Err(Error::unexpected("a broken sshd_config was restored")),
        Err(e) => {
            let after = std::fs::read(host.path("etc/ssh/sshd_config"))
                .map_err(|e| Error::io("reading sshd_config", e))?;
            say(out, format!("refused: {}", e.message()))?;
            say(
                out,
                format!("sshd_config on the host unchanged: {}", before == after),
            )
        }
    }
}
