//! Putting apps' data back: each database through its own tool inside its
//! running container, each volume swapped in with its containers stopped
//! (a Swarm service scaled to zero) and started again. One step per app.

use std::time::Instant;

use kastell_core::types::{AppData, AppDataKind, ArtifactRecord, ArtifactSource, RestoreReport};
use kastell_core::wire::restore_feed;
use kastell_core::{Error, PollSchedule, Result};

use super::{by_app, commands, selected_parts};
use crate::platform::PaasPlatform;
use crate::spec::AppContainers;

/// Step name prefix: restoring one app's data (`Restore app blog (k1)`).
pub const STEP_RESTORE_APP: &str = "Restore app";

/// The app artifacts of `records` (checked: a manifest from elsewhere may
/// name anything), in order. Refuses one whose app data is not plain.
pub(crate) fn app_records(records: &[ArtifactRecord]) -> Result<Vec<(ArtifactRecord, AppData)>> {
    let mut out = Vec::new();
    for record in records {
        if let Some(app) = &record.app {
            app.check().map_err(|e| {
                e.with_hint(format!(
                    "The backup's manifest names artifact {} with an unusable app; it cannot \
                     be restored",
                    record.name
                ))
            })?;
            out.push((record.clone(), app.clone()));
        }
    }
    Ok(out)
}

impl PaasPlatform {
    /// Restores the apps `source` selects among `records` (from
    /// [`app_records`]), one step per app, stopping at the first failure.
    pub(crate) async fn restore_apps(
        &self,
        source: &dyn ArtifactSource,
        records: &[(ArtifactRecord, AppData)],
        report: &mut RestoreReport,
    ) -> Result<()> {
        let selection = source.apps();
        let parts = selected_parts(records, selection);
        for (key, app) in by_app(&parts) {
            let name = format!("{STEP_RESTORE_APP} {} ({key})", app[0].name);
            let chosen: Vec<&(ArtifactRecord, AppData)> = records
                .iter()
                .filter(|(_, a)| a.app == key && selection.covers(a))
                .collect();
            report
                .step(name, async {
                    let mut done = Vec::new();
                    for (record, part) in chosen {
                        done.push(self.restore_part(source, record, part).await?);
                    }
                    Ok(((), done.join("; ")))
                })
                .await?;
        }
        Ok(())
    }

    /// Puts back one artifact of an app; returns what was done.
    async fn restore_part(
        &self,
        source: &dyn ArtifactSource,
        record: &ArtifactRecord,
        part: &AppData,
    ) -> Result<String> {
        if part.kind == AppDataKind::Volume {
            let volume = part.volume.as_deref().unwrap_or_default();
            let consumer = commands::volume_untar(
                &self.settings,
                self.spec.apps.containers,
                &part.app,
                volume,
            )?;
            let feed = restore_feed(source, &record.name, &consumer)?;
            let sent = self.feed(&feed.command, feed.stdin).await?;
            return Ok(format!(
                "volume {volume} replaced from {} ({sent} bytes), its containers stopped meanwhile",
                record.name
            ));
        }
        let container = self.wait_for_app(part).await?;
        let consumer = commands::db_restore(part.kind, &container)?;
        let feed = restore_feed(source, &record.name, &consumer)?;
        let sent = self.feed(&feed.command, feed.stdin).await.map_err(|e| {
            e.or_hint(format!(
                "The {} database of app {} may be partly restored; restore the app again \
                 (backup restore --app {}) or its safety backup",
                part.kind.as_str(),
                part.name,
                part.app
            ))
        })?;
        if part.kind == AppDataKind::Redis {
            // The server shut down to load the file at its start.
            if self.spec.apps.containers == AppContainers::Named {
                let _ = self
                    .transport
                    .exec(
                        &commands::start_container(&part.app)?,
                        self.settings.service_timeout,
                    )
                    .await;
            }
            self.wait_for_app(part).await?;
        }
        Ok(format!(
            "{} database restored from {} ({sent} bytes)",
            part.kind.as_str(),
            record.name
        ))
    }

    /// Waits (up to `db_ready_timeout_secs`) until the database resource of
    /// `part` runs and answers; returns its container.
    pub(crate) async fn wait_for_app(&self, part: &AppData) -> Result<String> {
        let started = Instant::now();
        let schedule = PollSchedule::new(
            std::time::Duration::from_millis(300),
            std::time::Duration::from_secs(3),
        );
        let mut waits = schedule.waits();
        loop {
            let last = match self.app_container(&part.app).await? {
                None => "its container is not running".to_owned(),
                Some(container) => {
                    let ready = self
                        .transport
                        .exec(
                            &commands::db_ready(part.kind, &container)?,
                            self.settings.short_timeout,
                        )
                        .await?;
                    if ready.success() {
                        return Ok(container);
                    }
                    format!("it does not answer yet: {}", ready.stderr_text().trim())
                }
            };
            let wait = waits.next().unwrap_or(schedule.max);
            if started.elapsed() + wait > self.settings.db_ready_timeout {
                return Err(Error::timeout(format!(
                    "the {} database of app {} ({}) was not ready within {}s: {last}",
                    part.kind.as_str(),
                    part.name,
                    part.app,
                    self.settings.db_ready_timeout.as_secs()
                ))
                .with_hint(
                    "Start the app in the platform (on a new server: deploy it first), then \
                     restore it with backup restore --app",
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }
}
