//! Backing up the selected apps: each database resource dumped by its own
//! tool inside its container, each volume as a tar with its containers
//! paused, every one its own artifact tagged with its app.

use kastell_core::types::{
    AppBackup, AppData, AppDataKind, AppSelection, ArtifactFormat, ArtifactRecord, ArtifactSink,
    ArtifactSpec,
};
use kastell_core::{ArtifactSinkExt, Error, RemoteCommand, Result};

use super::{Found, artifact_name, by_app, commands};
use crate::platform::PaasPlatform;

/// What backing up the apps gave.
#[derive(Debug, Default)]
pub(crate) struct AppsBackedUp {
    pub(crate) artifacts: Vec<ArtifactRecord>,
    pub(crate) apps: Vec<AppBackup>,
    pub(crate) warnings: Vec<String>,
}

/// Whether `part`'s app was named with `--app` (so a missing container is
/// an error, not a warning).
fn named(selection: &AppSelection, part: &AppData) -> bool {
    selection.only.iter().any(|w| part.named(w))
}

impl PaasPlatform {
    /// Backs up every part of `found` that `selection` covers (checked
    /// against what was found before anything is written: an unknown name
    /// is refused listing the apps). A database resource whose container
    /// is not running is skipped with a warning, or refused when its app
    /// was named with `--app`.
    pub(crate) async fn backup_apps(
        &self,
        sink: &mut dyn ArtifactSink,
        found: &Found,
        selection: &AppSelection,
    ) -> Result<AppsBackedUp> {
        let mut done = AppsBackedUp {
            warnings: found.warnings.clone(),
            ..AppsBackedUp::default()
        };
        let chosen: Vec<AppData> = found
            .parts
            .iter()
            .filter(|p| selection.covers(p))
            .cloned()
            .collect();
        for (key, parts) in by_app(&chosen) {
            let mut summary = AppBackup {
                app: key.to_owned(),
                name: parts[0].name.clone(),
                artifacts: Vec::new(),
                estimated_bytes: None,
                stored_bytes: 0,
                consistency: Vec::new(),
            };
            let mut volumes = 0;
            for part in parts {
                let (command, estimate) = if part.kind == AppDataKind::Volume {
                    volumes += 1;
                    let volume = part.volume.as_deref().unwrap_or_default();
                    (
                        commands::volume_tar(&self.settings, volume)?,
                        self.kib(&commands::volume_size(&self.settings, volume)?)
                            .await,
                    )
                } else {
                    let Some(container) = self.app_container(&part.app).await? else {
                        let message = format!(
                            "app {} ({}): its {} container is not running, so its data is not \
                             in this backup",
                            part.name,
                            part.app,
                            part.kind.as_str()
                        );
                        if named(selection, part) {
                            return Err(Error::not_found(message).with_hint(
                                "Start the app's database in the platform, then back up again",
                            ));
                        }
                        done.warnings.push(message);
                        continue;
                    };
                    (
                        commands::db_dump(part.kind, &container)?,
                        self.kib(&commands::db_size(part.kind, &container)?).await,
                    )
                };
                let spec = ArtifactSpec {
                    name: artifact_name(part, volumes),
                    format: match part.kind {
                        AppDataKind::Postgres => ArtifactFormat::PgCustom,
                        AppDataKind::Volume => ArtifactFormat::Tar,
                        _ => ArtifactFormat::Raw,
                    },
                };
                let record = sink
                    .stream(
                        self.transport.as_ref(),
                        &spec,
                        &command,
                        None,
                        self.settings.dump_timeout,
                    )
                    .await
                    .map_err(|e| {
                        e.or_hint(format!(
                            "Backing up the {} data of app {} failed; leave it out with \
                             --exclude-app {} to back up the rest",
                            part.kind.as_str(),
                            part.name,
                            part.app
                        ))
                    })?;
                let record = sink.assign_app(&record.name, part)?;
                if let Some(bytes) = estimate {
                    *summary.estimated_bytes.get_or_insert(0) += bytes;
                }
                summary.stored_bytes += record.size;
                summary.artifacts.push(record.name.clone());
                let line = format!("{}: {}", part.kind.as_str(), part.kind.consistency());
                if !summary.consistency.contains(&line) {
                    summary.consistency.push(line);
                }
                done.artifacts.push(record);
            }
            if !summary.artifacts.is_empty() {
                done.apps.push(summary);
            }
        }
        Ok(done)
    }

    /// Runs a command printing KiB; the bytes, or `None` when it failed or
    /// printed something else (an estimate is never worth failing for).
    async fn kib(&self, command: &RemoteCommand) -> Option<u64> {
        let out = self
            .transport
            .exec(command, self.settings.short_timeout)
            .await
            .ok()?;
        if !out.success() {
            return None;
        }
        out.stdout_text()
            .trim()
            .parse::<u64>()
            .ok()
            .map(|k| k.saturating_mul(1024))
    }
}
