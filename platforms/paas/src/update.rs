//! Updating the platform with its own install script.

use kastell_core::types::{UpdateOptions, UpdateReport, tail};
use kastell_core::{Error, ErrorKind, Result};

use crate::commands;
use crate::platform::PaasPlatform;
use crate::version::UNKNOWN_VERSION;

/// How much command output an update report or error keeps.
const TAIL_BYTES: usize = 2000;

/// The last [`TAIL_BYTES`] of a command's output as text (lossy, trimmed).
fn output_tail(bytes: &[u8]) -> String {
    tail(String::from_utf8_lossy(bytes).trim(), TAIL_BYTES)
}

impl PaasPlatform {
    /// Runs (or, for a dry run, only reports) the update script. A dry run
    /// reads the version and nothing else. A non-zero exit is
    /// [`ErrorKind::CommandFailed`] with the tail of stderr (or stdout) and
    /// a hint; a timeout keeps the transport's kind with a hint added.
    pub(crate) async fn run_update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        let command = commands::update(self.spec)?;
        let version_before = self.version_or_unknown().await;
        let mut report = UpdateReport {
            version_before: Some(version_before.clone()),
            commands: vec![command.as_str().to_owned()],
            ..UpdateReport::default()
        };
        if options.dry_run {
            report.hint = Some(format!(
                "Dry run: nothing was changed. The update downloads {} and runs it on the server.",
                self.spec.update.url
            ));
            return Ok(report);
        }
        let timeout = self.settings.update_timeout.unwrap_or(options.timeout);
        let out = self
            .run_installer(&command, timeout, "update")
            .await
            .map_err(|e| e.with_context("version_before", &version_before))?;
        let name = self.spec.display_name;
        let version_after = self.version_or_unknown().await;
        report.output_tail = output_tail(&out);
        report.hint = if version_after == UNKNOWN_VERSION {
            Some(format!(
                "The update finished but the {name} version could not be read; check that it is running"
            ))
        } else if version_after == version_before {
            Some(format!("{name} was already at {version_after}"))
        } else {
            None
        };
        report.version_after = Some(version_after);
        Ok(report)
    }
}

impl PaasPlatform {
    /// Installs the platform on a fresh host with its install script
    /// ([`commands::install`]), for at most the `update_timeout_secs`
    /// option or `timeout`; returns the platform's name and the version it
    /// then answers.
    pub(crate) async fn run_install(&self, timeout: std::time::Duration) -> Result<String> {
        let command = commands::install(self.spec)?;
        let timeout = self.settings.update_timeout.unwrap_or(timeout);
        self.run_installer(&command, timeout, "install").await?;
        let version = self.version_or_unknown().await;
        Ok(format!("{} {version} installed", self.spec.display_name))
    }

    /// Runs an installer `command` (`what`: `update` or `install`) for at
    /// most `timeout` and returns its stdout. A non-zero exit is
    /// [`ErrorKind::CommandFailed`] with the tail of stderr (or stdout) and
    /// a hint; a timeout keeps the transport's kind with a hint added.
    async fn run_installer(
        &self,
        command: &kastell_core::RemoteCommand,
        timeout: std::time::Duration,
        what: &str,
    ) -> Result<Vec<u8>> {
        let name = self.spec.display_name;
        let out = self.transport.exec(command, timeout).await.map_err(|e| {
            let hint = if e.kind() == ErrorKind::Timeout {
                format!(
                    "The {name} installer did not finish within {}s; it may still be running on \
                     the server. Check the platform before retrying, or raise the \
                     update_timeout_secs option",
                    timeout.as_secs()
                )
            } else {
                format!("The {name} {what} could not be run; check the SSH connection")
            };
            e.or_hint(hint)
        })?;
        if !out.success() {
            let stderr = output_tail(&out.stderr);
            let detail = if stderr.is_empty() {
                output_tail(&out.stdout)
            } else {
                stderr
            };
            return Err(Error::new(
                ErrorKind::CommandFailed,
                format!("{name} {what} failed (exit code {}): {detail}", out.status),
            )
            .with_context("exit_status", out.status)
            .with_hint(format!(
                "Read the installer output in the error; the server may need more disk space or \
                 a manual run of the installer ({}). Check the platform's health before retrying",
                self.spec.update.url
            )));
        }
        Ok(out.stdout)
    }
}
