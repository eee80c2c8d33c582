//! The safety copy a restore takes before it changes anything
//! (`--safety`): a provider snapshot, a backup also stored in a
//! repository, a local backup, or none; `auto` picks one in a stated
//! order. A failed safety step stops the restore before the platform is
//! stopped.

use kastell_core::types::{BackupId, StepReport, StepTimer};
use kastell_core::{Error, ErrorKind, Registry, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::backup::{BackupEngine, BackupRequest, nothing_changed};
use crate::engine::repos::RepoConfig;
use crate::ops::context::{Context, cloud_provider_id, server_id};
use crate::ops::repository::{self, RepoChoice};
use crate::ops::snapshot::take_awaited;
use crate::policy::Surface;
use crate::state::store::ServerRecord;

/// Which safety copy a restore takes first, as an argument.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
// Doc comments on the variants would turn the schema's `enum` into a
// `oneOf` of described constants, which some clients render poorly.
#[allow(missing_docs)]
pub enum SafetyChoice {
    // The server's default repository when it has one, else local.
    #[default]
    Auto,
    // An awaited provider snapshot (billed monthly).
    Snapshot,
    // A safety backup also stored in the repository.
    Repo,
    // A full local safety backup.
    Local,
    // No safety copy (refused unless allowed).
    None,
}

/// The safety step a restore will take, resolved from a [`SafetyChoice`].
#[derive(Debug, Clone)]
pub(crate) enum SafetyStep {
    /// A provider snapshot of the server, awaited.
    Snapshot,
    /// A local safety backup, then stored in this repository.
    Repo(RepoConfig),
    /// A local safety backup.
    Local,
    /// Nothing.
    None,
}

impl SafetyStep {
    /// `snapshot`, `repo`, `local` or `none`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Repo(_) => "repo",
            Self::Local => "local",
            Self::None => "none",
        }
    }
}

/// Whether `server`'s provider can take snapshots (a cloud server whose
/// provider is compiled in and declares them).
fn snapshots_available(server: &ServerRecord) -> bool {
    cloud_provider_id(server)
        .ok()
        .and_then(|id| Registry::global().provider(id).ok())
        .is_some_and(|entry| entry.capability.snapshot_create)
}

/// Resolves `choice` for a restore of `server` (read from repository
/// `reading`, if any). `auto` takes, in order: the server's default
/// repository (an incremental copy), else a local backup; a snapshot is
/// billable and never picked implicitly. Refuses a snapshot where the
/// provider has none, `repo` without a repository, and `none` unless
/// allowed ([`none_allowed`]).
pub(crate) fn resolve(
    ctx: &Context,
    server: &ServerRecord,
    choice: SafetyChoice,
    reading: Option<&str>,
) -> Result<SafetyStep> {
    let repo = || -> Result<Option<RepoConfig>> {
        match repository::chosen(ctx, &server.name, &RepoChoice::ServerDefault)? {
            Some(config) => Ok(Some(config)),
            None => reading.map(|name| repository::named(ctx, name)).transpose(),
        }
    };
    match choice {
        SafetyChoice::Auto => Ok(match repository::chosen(ctx, &server.name, &RepoChoice::ServerDefault)? {
            Some(config) => SafetyStep::Repo(config),
            None => SafetyStep::Local,
        }),
        SafetyChoice::Local => Ok(SafetyStep::Local),
        SafetyChoice::Repo => repo()?.map(SafetyStep::Repo).ok_or_else(|| {
            Error::invalid_input(format!(
                "--safety repo needs a repository, and server {} has no default repository",
                server.name
            ))
            .with_hint(format!(
                "Set one with `kastell repo default NAME --server {}`, or use --safety local",
                server.name
            ))
        }),
        SafetyChoice::Snapshot if snapshots_available(server) => Ok(SafetyStep::Snapshot),
        SafetyChoice::Snapshot => Err(Error::invalid_input(format!(
            "--safety snapshot needs a provider that takes snapshots, and server {} has none (added manually, or its provider cannot)",
            server.name
        ))
        .with_hint("Use --safety repo or --safety local")),
        SafetyChoice::None => {
            none_allowed(ctx)?;
            Ok(SafetyStep::None)
        }
    }
}

/// Refuses a restore without a safety copy (`PermissionDenied`), except
/// on the command line with no safety levels configured, or where
/// `safety.json` says `"restore_without_safety_copy": true`. Over MCP it
/// is always refused unless the file allows it, and the hint tells the
/// agent to take a safety copy or ask the person, never how to lift the
/// rule (that is the person's own decision, made in their file).
fn none_allowed(ctx: &Context) -> Result<()> {
    let safety = ctx.policy.safety()?;
    let allowed_by_file = safety
        .file
        .as_ref()
        .is_some_and(|f| f.restore_without_safety_copy);
    if allowed_by_file || (ctx.surface == Surface::Cli && !safety.configured()) {
        return Ok(());
    }
    let (choice, why, hint) = if ctx.surface == Surface::Mcp {
        (
            "safety none",
            "over MCP",
            "Call backup-restore again with safety auto, local, repo or snapshot. Restoring \
             without a safety copy can lose the current data for good: only the person you work \
             for can decide that, so ask them instead of retrying",
        )
    } else {
        (
            "--safety none",
            "while safety levels are configured",
            "Use --safety auto, local, repo or snapshot; or set \"restore_without_safety_copy\": \
             true in KASTELL_DIR/safety.json",
        )
    };
    Err(Error::new(
        ErrorKind::PermissionDenied,
        format!("A restore without a safety copy ({choice}) is refused {why}"),
    )
    .with_hint(hint))
}

/// The plan's line for `step`: what it takes and what it costs
/// (`last_bytes`: the size of the newest local backup, the estimate of a
/// full one).
pub(crate) fn plan_line(
    step: &SafetyStep,
    server: &ServerRecord,
    last_bytes: Option<u64>,
) -> String {
    let size = last_bytes.map_or_else(
        || "size unknown: no local backup yet".to_owned(),
        |b| format!("about {b} bytes, as the newest backup"),
    );
    match step {
        SafetyStep::Snapshot => format!(
            "Safety copy: provider snapshot of {} (awaited; billed monthly by the provider, the estimate is in the result)",
            server.name
        ),
        SafetyStep::Repo(config) => format!(
            "Safety copy: backup of the current state ({size}), also stored in repository {} (only changed chunks are added)",
            config.name
        ),
        SafetyStep::Local => {
            format!("Safety copy: full local backup of the current state ({size})")
        }
        SafetyStep::None => "Safety copy: none (the current state is not saved)".to_owned(),
    }
}

/// What the safety step took and how to get it back.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SafetyTaken {
    /// `snapshot`, `repo`, `local` or `none`.
    pub kind: String,
    /// The provider snapshot id, repository snapshot id or local backup id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The repository holding it (`repo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Its cost: a snapshot's monthly estimate, or the bytes stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// How to put the state before the restore back.
    pub restore_with: String,
}

/// What the safety step took before the engine runs; a `local` copy is
/// the engine's own and is filled in by [`Pending::finish`].
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    kind: &'static str,
    /// The local safety backup taken here (`repo`).
    pub(crate) local: Option<String>,
    id: Option<String>,
    repository: Option<String>,
    cost: Option<String>,
}

impl Pending {
    fn of(step: &SafetyStep) -> Self {
        Self {
            kind: step.kind(),
            local: None,
            id: None,
            repository: None,
            cost: None,
        }
    }

    /// What was taken, with `engine_copy` (the engine's local safety
    /// backup, for `local`), and how to put it back on `server`.
    pub(crate) fn finish(self, engine_copy: Option<&BackupId>, server: &str) -> SafetyTaken {
        let local = self
            .local
            .clone()
            .or_else(|| engine_copy.map(ToString::to_string));
        let restore_with = match (self.kind, &local, &self.id) {
            ("snapshot", _, Some(id)) => {
                format!("kastell snapshot restore {server} --snapshot {id}")
            }
            ("repo", Some(local), _) => format!(
                "kastell backup restore {server} --backup {local} (or from the repository: --repo {} --backup {local})",
                self.repository.as_deref().unwrap_or("")
            ),
            (_, Some(local), _) => format!("kastell backup restore {server} --backup {local}"),
            _ => "nothing: no safety copy was taken".to_owned(),
        };
        SafetyTaken {
            kind: self.kind.to_owned(),
            id: self.id.or(local),
            repository: self.repository,
            cost: self.cost,
            restore_with,
        }
    }
}

/// Takes the safety copy `step` names before anything on `server` is
/// changed (`local` is left to the engine, which takes it with the lock
/// held): a snapshot awaited until available, or a safety backup of the
/// current state (marked as taken before restoring `restoring`; only the
/// apps `engine` restores in place, when it restores only some) stored in
/// the repository. On failure, the error says nothing was changed; the
/// steps run come back either way.
pub(crate) async fn take(
    ctx: &Context,
    engine: &BackupEngine,
    server: &ServerRecord,
    step: &SafetyStep,
    request: &BackupRequest,
    restoring: &BackupId,
) -> std::result::Result<(Pending, Vec<StepReport>), (Error, Vec<StepReport>)> {
    let mut pending = Pending::of(step);
    let mut ran = Vec::new();
    match step {
        SafetyStep::Local | SafetyStep::None => {}
        SafetyStep::Snapshot => {
            let timer = StepTimer::start("Safety snapshot");
            match snapshot(ctx, server).await {
                Ok((id, cost)) => {
                    ran.push(timer.success(format!("provider snapshot {id} is available")));
                    pending.id = Some(id);
                    pending.cost = cost;
                }
                Err(e) => {
                    let e = nothing_changed(e);
                    ran.push(timer.failure(&e));
                    return Err((e, ran));
                }
            }
        }
        SafetyStep::Repo(config) => {
            let timer = StepTimer::start("Safety backup");
            let created = match engine.create_safety(request, restoring).await {
                Ok(created) => {
                    ran.push(timer.success(format!("current state saved as {}", created.id)));
                    created
                }
                Err(e) => {
                    ran.push(timer.failure(&e));
                    return Err((e, ran));
                }
            };
            pending.local = Some(created.id.to_string());
            let timer = StepTimer::start(format!("Store safety backup in {}", config.name));
            match repository::store(ctx, config, &server.name, &created.id).await {
                Ok(copy) => {
                    ran.push(timer.success(format!(
                        "repository snapshot {} ({} bytes added)",
                        copy.snapshot_id, copy.added_bytes
                    )));
                    pending.id = Some(copy.snapshot_id);
                    pending.repository = Some(copy.repository);
                    pending.cost = Some(format!(
                        "{} bytes added to the repository",
                        copy.added_bytes
                    ));
                }
                Err(e) => {
                    let e = nothing_changed(repository::store_failed(e, &created.id, &config.name));
                    ran.push(timer.failure(&e));
                    return Err((e, ran));
                }
            }
        }
    }
    Ok((pending, ran))
}

/// An awaited provider snapshot of `server` (named `kastell-safety-<ms>`,
/// which snapshot rotation leaves alone): its id and monthly cost
/// estimate (none when the estimate fails).
async fn snapshot(ctx: &Context, server: &ServerRecord) -> Result<(String, Option<String>)> {
    let provider = ctx.provider_for(server)?;
    let id = server_id(server)?;
    let (snapshot, cost) = take_awaited(
        ctx,
        provider.as_ref(),
        &id,
        "kastell-safety-",
        "restoring again",
    )
    .await?;
    Ok((snapshot.id.to_string(), cost))
}
