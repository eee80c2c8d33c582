//! Restoring a backup while the platform is stopped: put the platform's
//! secret back, start the database, wait for it, replace its contents, put
//! the configuration back.

use std::io::{Cursor, Read};
use std::time::Instant;

use kastell_core::transport::check_status;
use kastell_core::types::{
    AppData, ArtifactFormat, ArtifactRecord, ArtifactSource, RestoreReport, StepReport, StepStatus,
};
use kastell_core::wire::restore_feed;
use kastell_core::{BoxRead, Error, PollSchedule, RemoteCommand, Result};

use crate::apps::restore::app_records;
use crate::commands;
use crate::platform::PaasPlatform;
pub use crate::secret::STEP_RESTORE_SECRET;
use crate::secret::SecretStep;
use crate::spec::SecretSpec;

/// Step name: starting only the database service.
pub const STEP_START_DB: &str = "Start database";
/// Step name: polling `pg_isready` until the database accepts connections.
pub const STEP_WAIT_DB: &str = "Wait for database";
/// Step name: replacing the database contents.
pub const STEP_RESTORE_DB: &str = "Restore database";
/// Step name: extracting the configuration archive.
pub const STEP_RESTORE_CONFIG: &str = "Restore config";

/// The artifacts a restore uses, found by format so legacy names work.
struct Artifacts {
    db: ArtifactRecord,
    config: Option<ArtifactRecord>,
}

fn find_artifacts(source: &dyn ArtifactSource) -> Result<Artifacts> {
    // The platform's own artifacts: the apps' are tagged with their app.
    let records: Vec<ArtifactRecord> = source
        .records()
        .into_iter()
        .filter(|r| r.app.is_none())
        .collect();
    let db = records
        .iter()
        .find(|r| {
            matches!(
                r.format,
                ArtifactFormat::PgCustom | ArtifactFormat::PgDirectoryTar
            )
        })
        .or_else(|| records.iter().find(|r| r.format == ArtifactFormat::PgPlain))
        .cloned()
        .ok_or_else(|| {
            Error::invalid_input("the backup has no database dump (pg-custom, pg-directory-tar or pg-plain artifact)")
                .with_hint("Pick another backup of this server: this one holds no database dump")
        })?;
    let config = records
        .iter()
        .find(|r| r.format == ArtifactFormat::Tar)
        .cloned();
    Ok(Artifacts { db, config })
}

impl PaasPlatform {
    /// Runs the restore steps, stopping at the first failure, and reports
    /// every step with the error that stopped it, its message prefixed
    /// with the step's name (`Restore database failed: ...`) and its
    /// context `failed_step` naming it. Nothing runs when the backup has
    /// no database artifact (the report is then refused, with no steps).
    ///
    /// A platform with a [`crate::SecretSpec`] other than `None` restores its
    /// secret first ([`STEP_RESTORE_SECRET`], reported skipped when the
    /// backup holds none): the database is started only once the key that
    /// decrypts it is in place.
    pub(crate) async fn restore_steps(&self, source: &dyn ArtifactSource) -> RestoreReport {
        let apps = match app_records(&source.records()).and_then(|apps| {
            let parts: Vec<AppData> = apps.iter().map(|(_, a)| a.clone()).collect();
            source
                .apps()
                .check_against(&parts, "in this backup")
                .map(|()| apps)
        }) {
            Ok(apps) => apps,
            Err(e) => return RestoreReport::refused(e),
        };
        if source.apps().is_only() {
            // Only those apps, in place: the platform's own data untouched.
            let mut report = RestoreReport::default();
            let outcome = self.restore_apps(source, &apps, &mut report).await;
            return report.conclude(outcome);
        }
        let artifacts = match find_artifacts(source) {
            Ok(a) => a,
            Err(e) => return RestoreReport::refused(e),
        };
        let mut report = RestoreReport::default();
        let outcome = async {
            let secret = if self.spec.secret == SecretSpec::None {
                SecretStep::default()
            } else {
                let secret = report
                    .step(STEP_RESTORE_SECRET, self.restore_secret(source))
                    .await?;
                if secret.skipped {
                    if let Some(step) = report.steps.last_mut() {
                        step.status = StepStatus::Skipped;
                    }
                }
                secret
            };
            report
                .step(STEP_START_DB, async {
                    self.run_service(self.spec.services.start_db, "start the database of")
                        .await
                        .map(|_| ((), "database service started".to_owned()))
                })
                .await?;
            let container = report.step(STEP_WAIT_DB, self.wait_for_database()).await?;
            report
                .step(
                    STEP_RESTORE_DB,
                    self.restore_database(source, &artifacts.db, &container, secret.changed),
                )
                .await?;
            match &artifacts.config {
                Some(config) => {
                    report
                        .step(
                            STEP_RESTORE_CONFIG,
                            self.restore_config(source, config, secret.written_entry.as_deref()),
                        )
                        .await?
                }
                None => report.steps.push(StepReport::skipped(
                    STEP_RESTORE_CONFIG,
                    "the backup has no configuration archive",
                )),
            }
            // Each app's data once the platform's is back: into the apps'
            // containers, or on a fresh host (none exist yet) deployed
            // through the platform's API first.
            if self.apps_missing(&apps).await? {
                self.deploy_and_restore_apps(source, &apps, &container, &mut report)
                    .await
            } else {
                self.restore_apps(source, &apps, &mut report).await
            }
        }
        .await;
        let mut report = report.conclude(outcome);
        // Named after the first failed step (a credential's deletion runs
        // after a failure, and succeeds).
        let failed = report
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failure)
            .or(report.steps.last());
        if let (Some(err), Some(failed)) = (report.error.take(), failed) {
            let message = format!("{} failed: {}", failed.name, err.message());
            let name = failed.name.clone();
            report.error = Some(err.with_message(message).with_context("failed_step", name));
        }
        report
    }

    /// Polls (finding the container, then `pg_isready`) with backoff until
    /// the database answers or the `db_ready_timeout_secs` deadline passes.
    /// Returns the container and a detail.
    async fn wait_for_database(&self) -> Result<(String, String)> {
        let started = Instant::now();
        let deadline = self.settings.db_ready_timeout;
        let schedule = PollSchedule::new(
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs(5),
        );
        let mut waits = schedule.waits();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let last = match self.find_db_container().await {
                Err(e)
                    if !e.is_retryable() && e.kind() != kastell_core::ErrorKind::CommandFailed =>
                {
                    return Err(e);
                }
                Err(e) => e.to_string(),
                Ok(None) => "no database container is running yet".to_owned(),
                Ok(Some(container)) => {
                    let command = commands::pg_isready(self.spec, &container)?;
                    match self
                        .transport
                        .exec(&command, self.settings.short_timeout)
                        .await
                    {
                        Ok(out) if out.success() => {
                            let detail = format!(
                                "{container} accepted connections after {attempts} check(s) in {:.1}s",
                                started.elapsed().as_secs_f64()
                            );
                            return Ok((container, detail));
                        }
                        Ok(out) => {
                            let text = format!("{} {}", out.stdout_text(), out.stderr_text());
                            format!("pg_isready exited {}: {}", out.status, text.trim())
                        }
                        Err(e) if e.is_retryable() => e.to_string(),
                        Err(e) => return Err(e),
                    }
                }
            };
            let wait = waits.next().unwrap_or(schedule.max);
            if started.elapsed() + wait > deadline {
                return Err(Error::timeout(format!(
                    "the {} database did not accept connections within {}s: {last}",
                    self.spec.display_name,
                    deadline.as_secs()
                ))
                .with_hint(
                    "Check the database container's logs (`docker logs`), or raise the \
                     db_ready_timeout_secs option",
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Replaces the database contents from a custom-format dump
    /// (`pg_restore --clean --if-exists --single-transaction`), the
    /// directory of a parallel dump (unpacked on the server into a
    /// temporary directory, then the same `pg_restore`) or, for a
    /// legacy plain-SQL dump, from `psql` with `ON_ERROR_STOP` after
    /// dropping and recreating the `public` schema. `secret_changed` says
    /// the secret step already replaced the platform's secret (the hint of a
    /// failure then says so).
    async fn restore_database(
        &self,
        source: &dyn ArtifactSource,
        record: &ArtifactRecord,
        container: &str,
        secret_changed: bool,
    ) -> Result<((), String)> {
        let (command, stdin, tool): (RemoteCommand, BoxRead, &str) = match record.format {
            ArtifactFormat::PgPlain => (
                commands::psql_restore(self.spec, container)?,
                Box::new(
                    Cursor::new(commands::PLAIN_SQL_PRELUDE.as_bytes())
                        .chain(source.open(&record.name)?),
                ),
                "psql (plain SQL, public schema recreated)",
            ),
            format => {
                let directory = format == ArtifactFormat::PgDirectoryTar;
                let consumer = if directory {
                    commands::pg_restore_directory(self.spec, container)?
                } else {
                    commands::pg_restore(self.spec, container)?
                };
                let feed = restore_feed(source, &record.name, &consumer)?;
                let tool = match (directory, feed.compressed) {
                    (false, false) => "pg_restore",
                    (false, true) => {
                        "pg_restore (sent zstd-compressed, decompressed on the server)"
                    }
                    (true, false) => "pg_restore from the unpacked directory of a parallel dump",
                    (true, true) => {
                        "pg_restore from the unpacked directory of a parallel dump (sent \
                         zstd-compressed, decompressed on the server)"
                    }
                };
                (feed.command, feed.stdin, tool)
            }
        };
        let sent = self.feed(&command, stdin).await.map_err(|e| {
            let mut hint = "The database was left as it was before the restore (single \
                            transaction) and kastell starts the platform again; check the \
                            database container, then retry"
                .to_owned();
            if secret_changed {
                hint.push_str(&format!(
                    ". The platform secret was already replaced by the backup's: the database \
                     left as it was may need the previous one, which the safety backup holds \
                     (restore it to go back){}",
                    match self.spec.secret {
                        SecretSpec::EnvKey { previous, .. } =>
                            format!(", and which is kept in {previous}"),
                        _ => String::new(),
                    }
                ));
            }
            e.or_hint(hint)
        })?;
        Ok((
            (),
            format!("{} ({sent} bytes) restored with {tool}", record.name),
        ))
    }

    /// Extracts the configuration archive into the configuration directory,
    /// all but `written` (a member the secret step already wrote).
    async fn restore_config(
        &self,
        source: &dyn ArtifactSource,
        record: &ArtifactRecord,
        written: Option<&str>,
    ) -> Result<((), String)> {
        let consumer = match written {
            None => commands::untar_config(self.spec, &self.settings)?,
            Some(entry) => commands::untar_config_except(self.spec, &self.settings, entry)?,
        };
        let feed = restore_feed(source, &record.name, &consumer)?;
        let how = if feed.compressed {
            ", sent zstd-compressed"
        } else {
            ""
        };
        let sent = self.feed(&feed.command, feed.stdin).await?;
        let except = written.map_or_else(String::new, |e| {
            format!(" (all but {e}, written with the platform secret)")
        });
        Ok((
            (),
            format!(
                "{} ({sent} bytes{how}) extracted into {}{except}",
                record.name,
                commands::config_dir(self.spec, &self.settings)
            ),
        ))
    }

    /// Runs `command` with `stdin`, discarding its stdout; a non-zero exit
    /// is an error with stderr. Returns the bytes sent.
    pub(crate) async fn feed(&self, command: &RemoteCommand, stdin: BoxRead) -> Result<u64> {
        let out = self
            .transport
            .exec_streaming(
                command,
                Some(stdin),
                Box::new(std::io::sink()),
                self.settings.restore_timeout,
            )
            .await?;
        check_status(command, out.status, &out.stderr)?;
        Ok(out.bytes_sent)
    }
}
