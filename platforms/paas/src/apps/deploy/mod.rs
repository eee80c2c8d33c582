//! Putting apps back on a fresh host: one recovered from a backup, where
//! the platform's database is back but no app has a container, because
//! Coolify and Dokploy create an app's containers and volumes only when
//! they deploy it. kastell asks the platform to, through its own API on
//! the server, in this order (one step each, in the restore's report):
//!
//! 1. start the platform ([`STEP_START_PLATFORM`]);
//! 2. write a short-lived API credential into its database
//!    ([`STEP_MINT_TOKEN`], see [`token`]);
//! 3. each database resource: deploy it, wait until its container runs
//!    and answers ([`STEP_DEPLOY_APP`]), restore its dump
//!    ([`crate::STEP_RESTORE_APP`]);
//! 4. each application: deploy it and wait until a container uses each
//!    of its volumes, then swap the volumes' files in with its containers
//!    stopped and start them again (the in-place volume restore). Deploy
//!    first, then swap: the platform creates the volume as it always does
//!    (its labels and options, which a volume kastell pre-created would
//!    lack: Docker Compose refuses a volume it did not create), and the
//!    swap is the path in-place restores already use. The cost: the app
//!    runs for a moment on an empty volume before its files are back;
//! 5. each app's health: its containers running ([`STEP_CHECK_APP`]);
//! 6. delete the credential ([`STEP_REVOKE_TOKEN`]), always: also when a
//!    step before failed (the error stays the first failure's).
//!
//! An app whose container exists already (an in-place restore, or one the
//! platform deployed meanwhile) is not deployed again.

mod api;
pub(crate) mod token;

use std::time::{Duration, Instant};

use kastell_core::types::{AppData, AppDataKind, ArtifactRecord, ArtifactSource, RestoreReport};
use kastell_core::{Error, PollSchedule, Result, TransportExt};

use super::{by_app, commands, selected_parts};
use crate::platform::PaasPlatform;
use crate::spec::DeployApi;
use token::ApiToken;

/// Step name: starting the platform so that its API answers.
pub const STEP_START_PLATFORM: &str = "Start platform";
/// Step name: writing the short-lived API credential.
pub const STEP_MINT_TOKEN: &str = "Create API credential";
/// Step name prefix: deploying one app through the platform's API and
/// waiting for its containers (`Deploy app blog (k1)`).
pub const STEP_DEPLOY_APP: &str = "Deploy app";
/// Step name prefix: one app's containers running after its restore.
pub const STEP_CHECK_APP: &str = "Check app";
/// Step name: deleting the API credential.
pub const STEP_REVOKE_TOKEN: &str = "Delete API credential";

/// The first characters of the last line `curl -w` prints, before the
/// HTTP status.
pub(crate) const STATUS_MARK: &str = "kastell-http-status:";

/// An app's shown name and key, as its steps name it.
fn named(app: &AppData) -> String {
    format!("{} ({})", app.name, app.app)
}

/// Whether `parts` (one app's) are a database resource's.
fn is_database(parts: &[&AppData]) -> bool {
    parts.iter().any(|p| p.kind != AppDataKind::Volume)
}

impl PaasPlatform {
    /// Whether any app of `records` has no container on the host (so the
    /// platform must deploy it first).
    pub(crate) async fn apps_missing(&self, records: &[(ArtifactRecord, AppData)]) -> Result<bool> {
        for (_, part) in records {
            let command = commands::find_any_container(
                self.spec.apps.containers,
                &part.app,
                part.volume.as_deref(),
            )?;
            if self.container_id(&command).await?.is_none() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Restores the apps of `records` on a fresh host in the order of the
    /// module docs; `db` is the platform database's container. The
    /// credential is deleted whatever fails after it was written.
    pub(crate) async fn deploy_and_restore_apps(
        &self,
        source: &dyn ArtifactSource,
        records: &[(ArtifactRecord, AppData)],
        db: &str,
        report: &mut RestoreReport,
    ) -> Result<()> {
        if self.spec.apps.deploy == DeployApi::None {
            return Err(Error::unsupported(format!(
                "the apps have no containers on this server and kastell knows no API to have {} \
                 deploy them",
                self.spec.display_name
            ))
            .with_hint(
                "Deploy each app in the platform, then restore it with backup restore --app",
            ));
        }
        report
            .step(STEP_START_PLATFORM, async {
                self.run_service(self.spec.services.start, "start")
                    .await
                    .map(|_| {
                        (
                            (),
                            format!("{} started to deploy the apps", self.spec.display_name),
                        )
                    })
            })
            .await?;
        let token = report.step(STEP_MINT_TOKEN, self.mint_token(db)).await?;
        let outcome = self
            .deploy_phases(source, records, &token, db, report)
            .await;
        let revoked = report
            .step(STEP_REVOKE_TOKEN, self.revoke_token(db, &token))
            .await;
        outcome.and(revoked)
    }

    /// Steps 3 to 5 of the module docs.
    async fn deploy_phases(
        &self,
        source: &dyn ArtifactSource,
        records: &[(ArtifactRecord, AppData)],
        token: &ApiToken,
        db: &str,
        report: &mut RestoreReport,
    ) -> Result<()> {
        let selection = source.apps();
        let parts = selected_parts(records, selection);
        let apps = by_app(&parts);
        let (databases, applications): (Vec<_>, Vec<_>) =
            apps.values().partition(|parts| is_database(parts));
        for phase in [&databases, &applications] {
            for app in phase.iter() {
                report
                    .step(
                        format!("{STEP_DEPLOY_APP} {}", named(app[0])),
                        self.deploy_app(app, token, db),
                    )
                    .await?;
                let own: Vec<(ArtifactRecord, AppData)> = records
                    .iter()
                    .filter(|(_, a)| a.app == app[0].app)
                    .cloned()
                    .collect();
                self.restore_apps(source, &own, report).await?;
            }
        }
        for app in apps.values() {
            report
                .step(
                    format!("{STEP_CHECK_APP} {}", named(app[0])),
                    self.check_app(app),
                )
                .await?;
        }
        Ok(())
    }

    /// Asks the platform to deploy one app (unless its containers exist)
    /// and waits until they run: a database until it answers, an
    /// application until a container uses each of its volumes.
    async fn deploy_app(
        &self,
        app: &[&AppData],
        token: &ApiToken,
        db: &str,
    ) -> Result<((), String)> {
        let first = app[0];
        let what = format!("app {}", named(first));
        let database = app.iter().find(|p| p.kind != AppDataKind::Volume);
        let kind = database.map(|p| p.kind);
        let mut present = true;
        for part in app {
            let command = commands::find_any_container(
                self.spec.apps.containers,
                &part.app,
                part.volume.as_deref(),
            )?;
            present &= self.container_id(&command).await?.is_some();
        }
        let said = if present {
            "its containers exist already, not deployed again".to_owned()
        } else {
            let id = self.dokploy_id(db, &first.app, kind).await?;
            let request =
                api::deploy_request(self.spec.apps.deploy, &first.app, kind, id.as_deref())?;
            self.api_call(&request, token, &first.app, &what).await?
        };
        let started = Instant::now();
        let ready = match database {
            Some(part) => {
                let container = self.wait_for_app(part).await?;
                format!("{} runs and answers", short(&container))
            }
            None => {
                let mut seen = Vec::new();
                for part in app {
                    let volume = part.volume.as_deref().unwrap_or_default();
                    seen.push(self.wait_for_volume_user(part, volume).await?);
                }
                format!("containers {} run", seen.join(", "))
            }
        };
        Ok((
            (),
            format!(
                "{}: {said}; {ready} after {:.1}s",
                self.spec.display_name,
                started.elapsed().as_secs_f64()
            ),
        ))
    }

    /// Dokploy's id of the resource `key` (its deploy takes the id, not
    /// the `appName`), read from its table and checked to be plain;
    /// `None` for other platforms.
    async fn dokploy_id(
        &self,
        db: &str,
        key: &str,
        kind: Option<AppDataKind>,
    ) -> Result<Option<String>> {
        if self.spec.apps.deploy != DeployApi::Dokploy {
            return Ok(None);
        }
        let word = api::dokploy_kind(kind);
        // `key` is a plain name (checked when the backup was read).
        let sql = format!("SELECT \"{word}Id\" FROM \"{word}\" WHERE \"appName\" = '{key}'");
        let out = self
            .transport
            .exec_checked(
                &commands::run_sql(self.spec, db, &sql)?,
                self.settings.short_timeout,
            )
            .await?;
        let text = out.stdout_text();
        let mut ids = text.lines().map(str::trim).filter(|l| !l.is_empty());
        match (ids.next(), ids.next()) {
            (Some(id), None) if kastell_core::types::is_app_key(id) => Ok(Some(id.to_owned())),
            (None, _) => Err(Error::not_found(format!(
                "the restored Dokploy database has no {word} named {key}"
            ))),
            _ => Err(Error::new(
                kastell_core::ErrorKind::Corrupt,
                format!("the restored Dokploy database answered an unusable id for {word} {key}"),
            )),
        }
    }

    /// Waits (up to `db_ready_timeout_secs`) until a running container
    /// uses `volume` of `part`; returns its short id.
    async fn wait_for_volume_user(&self, part: &AppData, volume: &str) -> Result<String> {
        let started = Instant::now();
        let schedule = PollSchedule::new(Duration::from_millis(300), Duration::from_secs(3));
        let mut waits = schedule.waits();
        loop {
            if let Some(id) = self
                .container_id(&commands::find_volume_user(volume)?)
                .await?
            {
                return Ok(short(&id));
            }
            let wait = waits.next().unwrap_or(schedule.max);
            if started.elapsed() + wait > self.settings.db_ready_timeout {
                return Err(Error::timeout(format!(
                    "app {} ({}) had no running container using volume {volume} within {}s of \
                     its deploy",
                    part.name,
                    part.app,
                    self.settings.db_ready_timeout.as_secs()
                ))
                .with_hint(format!(
                    "Check the app's deployment log in {}, then restore it with backup restore \
                     --app {}",
                    self.spec.display_name, part.app
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One app's health after its restore: its database container running
    /// and answering, or a running container using each of its volumes.
    async fn check_app(&self, app: &[&AppData]) -> Result<((), String)> {
        let mut running = Vec::new();
        for part in app {
            let found = match part.kind {
                AppDataKind::Volume => {
                    let volume = part.volume.as_deref().unwrap_or_default();
                    self.container_id(&commands::find_volume_user(volume)?)
                        .await?
                }
                _ => self.app_container(&part.app).await?,
            };
            match found {
                Some(id) => running.push(short(&id)),
                None => {
                    return Err(Error::new(
                        kastell_core::ErrorKind::CommandFailed,
                        format!(
                            "app {} ({}) has no running container after its restore",
                            part.name, part.app
                        ),
                    )
                    .with_hint(format!(
                        "Check the app in {} (`docker ps -a`); its data was restored",
                        self.spec.display_name
                    )));
                }
            }
        }
        Ok(((), format!("running: {}", running.join(", "))))
    }
}

/// A container id as Docker shows it (12 characters).
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}
