//! Streaming backups: the database dump and the configuration archive go
//! straight from the server into the engine's sink, then the platform's
//! secret (read first, so a host without it fails before the dump).
//! Nothing is written on the server, except by a parallel dump (see
//! [`crate::parallel`]), whose temporary directory is gone when it ends.

use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSpec, BackupReport};
use kastell_core::wire::{DumpJobs, WirePlan};
use kastell_core::{ArtifactSinkExt, Result, TransportExt, held_open_stdin};

use crate::commands;
use crate::parallel::{self, DbFacts, DumpPlan};
use crate::platform::PaasPlatform;
use crate::spec::SecretSpec;
use crate::version::UNKNOWN_VERSION;

/// The path of a configuration entry as shown to the user.
pub(crate) fn entry_path(base: &str, entry: &str) -> String {
    if entry == "." {
        base.to_owned()
    } else {
        format!("{}/{entry}", base.trim_end_matches('/'))
    }
}

impl PaasPlatform {
    /// Version (best effort), the platform secret (read, not written yet),
    /// then the database, the configuration and the secret's artifacts.
    /// The first failure ends the backup with its error; the engine
    /// discards whatever was written.
    pub(crate) async fn run_backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        let mut warnings = Vec::new();
        let platform_version = self.version_or_unknown().await;
        if platform_version == UNKNOWN_VERSION {
            warnings.push(format!(
                "the {} version could not be read; the backup records it as unknown",
                self.spec.display_name
            ));
        }
        let captured = self.capture_secret().await?;
        warnings.extend(captured.warning.clone());
        let container = self.db_container().await?;
        // The apps first: a name that matches none is refused before
        // anything is written.
        let found = self.discover_apps(&container).await?;
        let selection = sink.apps().clone();
        selection.check_against(
            &found.parts,
            &format!("on this {} server", self.spec.display_name),
        )?;
        // The engine's plan (its warning is the engine's to report).
        let plan = sink.wire().clone();
        let link = plan.link_bytes_per_sec;
        let dump = self.plan_dump(sink.dump_jobs(), &container, link).await;
        warnings.extend(dump.warning.clone());
        let (spec, command, stdin) = if dump.jobs > 1 {
            (
                ArtifactSpec {
                    name: self.spec.db_directory_artifact(),
                    format: ArtifactFormat::PgDirectoryTar,
                },
                commands::pg_dump_directory(self.spec, &container, dump.jobs)?,
                // Its end tells the server to stop and clean up.
                Some(held_open_stdin()),
            )
        } else {
            (
                ArtifactSpec {
                    name: self.spec.db_artifact(),
                    format: ArtifactFormat::PgCustom,
                },
                commands::pg_dump(self.spec, &container)?,
                None,
            )
        };
        // The database artifact's reason says how it was dumped too, once
        // the question was asked (always, but for --jobs 1).
        let db_plan = if sink.dump_jobs() != DumpJobs::ONE {
            WirePlan {
                reason: format!("{}; {}", plan.reason, dump.reason),
                ..plan.clone()
            }
        } else {
            plan.clone()
        };
        let mut artifacts = vec![
            sink.stream_with(
                &db_plan,
                self.transport.as_ref(),
                &spec,
                &command,
                stdin,
                self.settings.dump_timeout,
            )
            .await
            .map_err(|e| {
                e.or_hint(format!(
                    "The database dump failed; check that the {} database container is healthy",
                    self.spec.display_name
                ))
            })?,
        ];

        let (present, skipped) = self.existing_config_entries().await?;
        if present.is_empty() {
            warnings.push(format!(
                "no configuration was found under {}; the backup holds only the database",
                commands::config_dir(self.spec, &self.settings)
            ));
        } else {
            artifacts.push(
                sink.stream(
                    self.transport.as_ref(),
                    &ArtifactSpec {
                        name: self.spec.config_artifact(),
                        format: ArtifactFormat::Tar,
                    },
                    &commands::tar_config(self.spec, &self.settings, &present)?,
                    None,
                    self.settings.dump_timeout,
                )
                .await?,
            );
        }
        if let SecretSpec::EnvKey { file, key, .. } = self.spec.secret {
            let path = entry_path(self.spec.config.base, file);
            if skipped.contains(&path) {
                warnings.push(format!(
                    "{path} is missing, so the backup holds no {key}: {} encrypts parts of its \
                     database with it, and a restore onto another server cannot decrypt them",
                    self.spec.display_name
                ));
            }
        }
        artifacts.extend(self.write_secret_artifacts(sink, &captured)?);
        let apps = self.backup_apps(sink, &found, &selection).await?;
        artifacts.extend(apps.artifacts);
        warnings.extend(apps.warnings);
        Ok(BackupReport {
            platform_version,
            artifacts,
            skipped,
            warnings,
            apps: apps.apps,
        })
    }

    /// Which configuration entries exist (one command), and the full paths
    /// of those that do not.
    async fn existing_config_entries(&self) -> Result<(Vec<String>, Vec<String>)> {
        let command = commands::list_config(self.spec, &self.settings)?;
        let out = self
            .transport
            .exec_checked(&command, self.settings.short_timeout)
            .await?;
        let listed = out.stdout_text();
        let listed: Vec<&str> = listed.lines().map(str::trim).collect();
        let mut present = Vec::new();
        let mut skipped = Vec::new();
        for entry in self.spec.config.entries {
            if listed.contains(entry) {
                present.push((*entry).to_owned());
            } else {
                skipped.push(entry_path(self.spec.config.base, entry));
            }
        }
        Ok((present, skipped))
    }

    /// How the database is dumped for `asked` jobs: one stream without a
    /// question when one job is asked, else from what the database
    /// container reports (a failure to report is a single stream) and
    /// what the link sample (bytes per second) measured.
    async fn plan_dump(&self, asked: DumpJobs, container: &str, link: Option<f64>) -> DumpPlan {
        let limits = parallel::Limits {
            auto_min_bytes: self.settings.parallel_dump_min_bytes,
            job_bytes_per_sec: self.settings.dump_job_bytes_per_sec as f64,
            link_bytes_per_sec: link,
        };
        // One job, or auto without a link sample to show it would pay:
        // nothing to ask the container.
        if asked == DumpJobs::ONE || (asked == DumpJobs::Auto && link.is_none()) {
            return parallel::plan(asked, None, limits);
        }
        let facts = match commands::pg_dump_facts(self.spec, container) {
            Ok(command) => match self
                .transport
                .exec_checked(&command, self.settings.short_timeout)
                .await
            {
                Ok(out) => DbFacts::parse(&out.stdout_text()),
                Err(e) => {
                    tracing::debug!(error = %e, "the parallel dump probe failed");
                    None
                }
            },
            Err(_) => None,
        };
        parallel::plan(asked, facts.as_ref(), limits)
    }
}
