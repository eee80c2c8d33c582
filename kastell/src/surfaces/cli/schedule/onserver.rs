//! `kastell schedule install|list|remove|run --on-server`: on-server
//! backups (see [`crate::engine::onserver`]). kastell connects to each
//! server once to take the platform's backup commands and write the
//! files; after that the server backs itself up on its own timer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kastell_core::{Error, Result};
use serde::Serialize;

use super::super::Context;
use super::super::confirm::{Confirmation, confirm};
use super::onserver_storage::{
    RCLONE_RESTRICT, RcloneParts, operator_key_ids, prove_append_only, s3_keys, storage_sentence,
};
use crate::engine::onserver::files::{self, Layout, ServerFile, Setup, Starter, Target};
use crate::engine::onserver::remote::{self, Installed, Root};
use crate::engine::onserver::sftp::SftpTarget;
use crate::engine::onserver::state::{self, OnServer, OnServerList};
use crate::engine::onserver::{canary, capture};
use crate::engine::repos::{self, RepoConfig, RepoRegistry};
use crate::engine::schedule::{DEFAULT_BACKUP_AT, analyze};
use crate::ops;
use crate::state::store::ServerRecord;

/// What `install --on-server` needs besides the servers.
#[derive(Debug, Clone)]
pub(crate) struct InstallOnServer {
    /// The shared repository (S3 or SFTP).
    pub repo: String,
    /// The directory of the servers' own S3 key files (`<server>.env`;
    /// S3 only: on SFTP each server makes its own SSH key).
    pub keys_dir: Option<PathBuf>,
    /// The healthchecks-style ping URL, if any.
    pub ping_url: Option<String>,
    /// The calendar.
    pub calendar: Option<String>,
    /// Only print.
    pub dry_run: bool,
}

/// One server in the install report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerReport {
    server: String,
    repository: String,
    location: String,
    starter: Starter,
    artifacts: Vec<String>,
    files: Vec<FileReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_with: Option<String>,
    storage: String,
    /// SFTP: the storage-side `authorized_keys` line for the server's own
    /// key (not on a dry run, which makes no key).
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_key: Option<String>,
    /// What the storage did with the server's own login (not on a dry
    /// run, which writes nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    canary: Option<kastell_repo::append_only::CanaryReport>,
}

/// One file in the install report: its text only on a dry run, and a
/// secret file's never (only the names it sets).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    #[serde(flatten)]
    file: ServerFile,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InstallReport {
    dry_run: bool,
    calendar: String,
    servers: Vec<ServerReport>,
}

/// The servers `server`/`all` name.
fn servers(ctx: &Context, server: Option<&str>, all: bool) -> Result<Vec<ServerRecord>> {
    let store = ctx.store()?;
    if all {
        let list = store.servers()?;
        if list.is_empty() {
            return Err(Error::not_found("No servers in the fleet")
                .with_hint("Add one with `kastell server add`"));
        }
        return Ok(list);
    }
    Ok(vec![store.resolve(server)?])
}

/// How root is reached on `record`, and where its files go.
fn place(
    octx: &ops::Context,
    record: &ServerRecord,
) -> Result<(
    Arc<dyn kastell_core::Transport>,
    kastell_core::types::Privilege,
    Layout,
)> {
    let (root, privilege) = ops::place_of(record)?;
    Ok((octx.transport_for(record), privilege, Layout::new(root)))
}

/// Installs (or, dry, shows) the on-server backup of each of `records`.
pub(crate) async fn install(
    ctx: &Context,
    records: Vec<ServerRecord>,
    args: &InstallOnServer,
) -> Result<ExitCode> {
    let kastell_dir = ctx.kastell_dir()?;
    let mut registry = RepoRegistry::load(&kastell_dir)?;
    let shared = registry.get(&args.repo)?.clone();
    let calendar = args
        .calendar
        .clone()
        .unwrap_or_else(|| DEFAULT_BACKUP_AT.to_owned());
    analyze::calendar("--backup-at", &calendar)?;
    if let Some(url) = &args.ping_url {
        files::check_ping_url(url)?;
    }
    let octx = super::super::fleet::ops_context(ctx)?;
    let operator_keys = operator_key_ids(ctx);
    let mut list = OnServerList::load(&kastell_dir)?;
    let mut reports = Vec::new();
    for record in records {
        let name = record.name.clone();
        let location = state::server_location(&shared, &name)?;
        let sftp = SftpTarget::of(&location);
        let keys = match sftp {
            Some(_) => None,
            None => Some(s3_keys(args, &name, &operator_keys)?),
        };
        let (transport, privilege, layout) = place(&octx, &record)?;
        let root = Root {
            transport: transport.as_ref(),
            privilege,
        };
        let artifacts = capture::capture(transport.clone(), |t| octx.platform_for(&record, t))
            .await
            .map_err(|e| {
                let message = format!("{name}: {}", e.message());
                e.with_message(message)
            })?;
        let starter = remote::starter(root).await?;
        let (config, password) = if args.dry_run {
            let config = RepoConfig {
                name: state::repository_name(&shared.name, &name)?,
                location: location.clone(),
                password_file: PathBuf::new(),
                keep: shared.keep,
            };
            (config, "generated-at-install".to_owned())
        } else {
            let password_file = state::password_file(&kastell_dir, &name)?;
            let config = state::register(&mut registry, &shared, &name, password_file)?;
            ensure_initialised(&config, ctx).await?;
            let password = repos::read_password(&config.password_file)?;
            (config, password)
        };
        let repository = location.to_string();
        let rclone = match &sftp {
            Some(target) => {
                Some(RcloneParts::prepare(ctx, root, target, &layout, &name, args.dry_run).await?)
            }
            None => None,
        };
        let target = match (&rclone, &keys) {
            (Some(parts), _) => Target::Rclone {
                program: &parts.program,
                known_hosts: &parts.known_hosts,
            },
            (None, Some(keys)) => Target::S3 {
                repository: &repository,
                keys,
            },
            (None, None) => return Err(Error::unexpected("an S3 target without its key")),
        };
        let setup = Setup {
            server: &name,
            target,
            password: &password,
            ping_url: args.ping_url.as_deref(),
            calendar: &calendar,
            artifacts: &artifacts,
            starter,
        };
        let rendered = files::render(&setup, &layout)?;
        let authorized_key = rclone.as_ref().and_then(|parts| parts.authorized.clone());
        let canary = match (&sftp, &rclone) {
            _ if args.dry_run => None,
            (Some(target), Some(parts)) => {
                let line = parts.authorized.as_deref().unwrap_or_default();
                let report = canary::probe_rclone(
                    root,
                    &name,
                    (target, &layout),
                    &parts.pins.join("\n"),
                    &config.location,
                    line,
                )
                .await?;
                if !report.is_append_only() {
                    let hint = format!("{RCLONE_RESTRICT}\n{line}");
                    return Err(canary::refusal(&name, &report, &hint));
                }
                Some(report)
            }
            _ => Some(prove_append_only(root, &name, &layout, &rendered, &config).await?),
        };
        let started_with = if args.dry_run {
            None
        } else {
            let started = remote::write(root, &layout, &rendered, starter).await?;
            list.set(
                &name,
                OnServer {
                    repo: shared.name.clone(),
                    repository: config.name.clone(),
                    calendar: calendar.clone(),
                    starter,
                    ping: args.ping_url.is_some(),
                    installed_at: chrono::Utc::now().to_rfc3339(),
                },
            )?;
            started
        };
        reports.push(ServerReport {
            server: name,
            repository: config.name.clone(),
            location: repository,
            starter,
            artifacts: artifacts.iter().map(|a| a.name.clone()).collect(),
            storage: storage_sentence(&config),
            authorized_key,
            canary,
            files: rendered
                .into_iter()
                .map(|file| FileReport {
                    text: args.dry_run.then(|| file.shown()),
                    file,
                })
                .collect(),
            started_with,
        });
    }
    let report = InstallReport {
        dry_run: args.dry_run,
        calendar,
        servers: reports,
    };
    if ctx.json {
        ctx.out.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for server in &report.servers {
        if report.dry_run {
            for report in &server.files {
                let file = &report.file;
                ctx.out.line(format!(
                    "# {} on {} (mode {:04o})",
                    file.path, server.server, file.mode
                ))?;
                ctx.out.line(file.shown().trim_end())?;
            }
        }
        ctx.out.line(format!(
            "{} {}: backs up {} into {} ({}) on {} via {}.",
            if report.dry_run {
                "Would install on"
            } else {
                "Installed on"
            },
            server.server,
            server.artifacts.join(", "),
            server.repository,
            server.location,
            report.calendar,
            match server.starter {
                Starter::Systemd => "a systemd timer",
                Starter::Cron => "cron",
            }
        ))?;
        ctx.out.line(format!("  {}.", server.storage))?;
        if let Some(line) = &server.authorized_key {
            ctx.out
                .line(format!("  The server's key, on the storage: {line}"))?;
        }
        if let Some(canary) = &server.canary {
            let overwrite = match canary.overwrite {
                kastell_repo::append_only::Attempt::Kept => {
                    "kept the version an overwrite replaced"
                }
                _ => "refused the overwrite",
            };
            ctx.out.line(format!(
                "  Canary (from the server, with its own login): the storage refused the delete \
                 and {overwrite} of {}.",
                canary.canary
            ))?;
        }
    }
    if report.dry_run {
        ctx.out.line("Dry run: nothing was written.")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `config`'s repository with the operator's credential unless it
/// can already be opened.
async fn ensure_initialised(config: &RepoConfig, ctx: &Context) -> Result<()> {
    let env = ctx.env.clone();
    let config = config.clone();
    repos::off_runtime(move || {
        if repos::open(&config, &env).is_ok() {
            return Ok(());
        }
        repos::init(&config, &env).map(|_| ())
    })
    .await
}

/// One server in `schedule list --on-server`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListRow {
    server: String,
    #[serde(flatten)]
    entry: OnServer,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_server: Option<Installed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Lists the on-server backups kastell installed, and what each server
/// says about its own.
pub(crate) async fn list(ctx: &Context) -> Result<ExitCode> {
    let entries = OnServerList::load(&ctx.kastell_dir()?)?;
    let octx = super::super::fleet::ops_context(ctx)?;
    let mut rows = Vec::new();
    for (server, entry) in entries.all() {
        let found = match octx.store.find(server)? {
            Some(record) => {
                let (transport, privilege, layout) = place(&octx, &record)?;
                remote::show(
                    Root {
                        transport: transport.as_ref(),
                        privilege,
                    },
                    &layout,
                )
                .await
            }
            None => Err(Error::not_found(format!(
                "{server} is no longer in the fleet"
            ))),
        };
        let (on_server, error) = match found {
            Ok(found) => (Some(found), None),
            Err(e) => (None, Some(e.to_string())),
        };
        rows.push(ListRow {
            server: server.clone(),
            entry: entry.clone(),
            on_server,
            error,
        });
    }
    if ctx.json {
        ctx.out.json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        ctx.out.line(
            "No on-server backups. Install them with `kastell schedule install --on-server --repo NAME`.",
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.server.clone(),
                r.entry.repository.clone(),
                r.entry.calendar.clone(),
                match &r.on_server {
                    Some(found) if found.installed => format!(
                        "installed ({})",
                        serde_json::to_value(found.starter)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_else(|| "no starter".to_owned())
                    ),
                    Some(_) => "missing on the server".to_owned(),
                    None => format!("unknown: {}", r.error.as_deref().unwrap_or("-")),
                },
                r.on_server
                    .as_ref()
                    .and_then(|f| f.last_run.clone())
                    .unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "SERVER",
            "REPOSITORY",
            "CALENDAR",
            "ON THE SERVER",
            "LAST RUN",
        ],
        &table,
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RemoveRow {
    server: String,
    removed: Vec<String>,
    left_alone: Vec<String>,
}

/// Removes (or, dry, shows) the on-server backup of each of `records`:
/// the timer stopped, every file kastell wrote there removed. The
/// repository and its backups stay.
pub(crate) async fn remove(
    ctx: &Context,
    records: Vec<ServerRecord>,
    dry_run: bool,
    force: bool,
) -> Result<ExitCode> {
    let kastell_dir = ctx.kastell_dir()?;
    let mut list = OnServerList::load(&kastell_dir)?;
    let octx = super::super::fleet::ops_context(ctx)?;
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    if !dry_run {
        let question = format!(
            "Remove the on-server backup of {} (its backups stay in the repository)?",
            names.join(", ")
        );
        if confirm(&question, force)? == Confirmation::Declined {
            eprintln!("Cancelled: nothing was removed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut rows = Vec::new();
    for record in &records {
        let (transport, privilege, layout) = place(&octx, record)?;
        let root = Root {
            transport: transport.as_ref(),
            privilege,
        };
        let row = if dry_run {
            RemoveRow {
                server: record.name.clone(),
                removed: layout.every_file(),
                left_alone: Vec::new(),
            }
        } else {
            let (removed, left_alone) = remote::remove(root, &layout).await?;
            list.forget(&record.name)?;
            RemoveRow {
                server: record.name.clone(),
                removed,
                left_alone,
            }
        };
        rows.push(row);
    }
    if ctx.json {
        ctx.out.json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    for row in &rows {
        ctx.out.line(format!(
            "{} on {}:",
            if dry_run {
                "Would remove what kastell wrote (where present)"
            } else {
                "Removed"
            },
            row.server
        ))?;
        for path in &row.removed {
            ctx.out.line(format!("  {path}"))?;
        }
        for path in &row.left_alone {
            ctx.out
                .line(format!("  left alone (not written by kastell): {path}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs each server's installed script now, over SSH, as its timer would.
pub(crate) async fn run_now(ctx: &Context, records: Vec<ServerRecord>) -> Result<ExitCode> {
    let octx = super::super::fleet::ops_context(ctx)?;
    for record in &records {
        let (transport, privilege, layout) = place(&octx, record)?;
        remote::run_now(
            Root {
                transport: transport.as_ref(),
                privilege,
            },
            &layout,
        )
        .await
        .map_err(|e| {
            let message = format!(
                "the on-server backup of {} failed: {}",
                record.name,
                e.message()
            );
            e.with_message(message)
        })?;
        ctx.out
            .line(format!("The on-server backup of {} ran.", record.name))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves `--server`/`--all` for the on-server commands.
pub(crate) fn targets(ctx: &Context, server: Option<&str>, all: bool) -> Result<Vec<ServerRecord>> {
    servers(ctx, server, all)
}
