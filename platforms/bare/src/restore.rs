//! Restoring the configuration tar: validate the candidate, then switch.
//!
//! The whole restore is one remote script ([`SCRIPT`]) fed with the archive
//! on stdin. It unpacks into a private temporary directory, validates what
//! would be in place after the switch (`sshd -t`, `nginx -t`), and only
//! when every check passes extracts the same archive under the root and
//! reloads the services whose configuration changed. It reports each stage
//! as a `KASTELL_STEP <id> ok|failed|skipped <detail>` line.

use std::time::Duration;

use kastell_core::transport::check_status;
use kastell_core::types::{ArtifactFormat, ArtifactSource, RestoreReport, StepReport, StepStatus};
use kastell_core::wire::restore_feed;
use kastell_core::{Error, ErrorKind, RemoteCommand, Result, Transport};

use crate::backup::{ARTIFACT, LEGACY_ARTIFACT};
use crate::options::BareOptions;
use crate::remote::{Capture, Elevation};

const TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Exit status: the archive could not be unpacked (nothing changed).
pub const EXIT_UNPACK: i32 = 20;
/// Exit status: `sshd -t` refused the restored sshd_config (nothing changed).
pub const EXIT_SSHD_INVALID: i32 = 10;
/// Exit status: `nginx -t` refused the restored configuration (nothing changed).
pub const EXIT_NGINX_INVALID: i32 = 11;
/// Exit status: extracting under the root failed (the switch may be partial).
pub const EXIT_SWITCH: i32 = 12;
/// Exit status: the files were restored but a reload failed.
pub const EXIT_RELOAD: i32 = 13;

/// The restore script. Its one placeholder is the root. nginx is checked on
/// a copy of the live `etc/nginx` overlaid with the archive's, in which
/// every `/etc/nginx/` in file contents and symlink targets is rewritten to
/// the copy, so `nginx -t -c <copy>/nginx.conf` reads only candidate files.
const SCRIPT: &str = include_str!("restore.sh");

fn step_name(id: &str) -> String {
    match id {
        "unpack" => "Unpack backup",
        "validate-sshd" => "Validate sshd_config",
        "validate-nginx" => "Validate nginx",
        "switch" => "Switch config",
        "reload-ssh" => "Reload ssh",
        "reload-nginx" => "Reload nginx",
        "reload-fail2ban" => "Reload fail2ban",
        "reload-ufw" => "Reload ufw",
        other => other,
    }
    .to_owned()
}

/// Turns the script's marker lines into step reports (in order).
pub(crate) fn parse_steps(output: &str) -> Vec<StepReport> {
    let mut steps = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("KASTELL_STEP ") else {
            continue;
        };
        let mut parts = rest.splitn(3, ' ');
        let (Some(id), Some(status)) = (parts.next(), parts.next()) else {
            continue;
        };
        let detail = parts.next().unwrap_or("").trim().to_owned();
        let (status, detail, error) = match status {
            "ok" => (StepStatus::Success, Some(detail), None),
            "skipped" => (StepStatus::Skipped, Some(detail), None),
            _ => (StepStatus::Failure, None, Some(detail)),
        };
        steps.push(StepReport {
            name: step_name(id),
            status,
            detail,
            error,
            hint: None,
            duration_ms: 0,
        });
    }
    steps
}

/// The artifact to restore: `bare-config.tar`, the legacy
/// `bare-config.tar.gz`, or else the only tar artifact.
pub(crate) fn pick_artifact(source: &dyn ArtifactSource) -> Result<String> {
    let records = source.records();
    for wanted in [ARTIFACT, LEGACY_ARTIFACT] {
        if records.iter().any(|r| r.name == wanted) {
            return Ok(wanted.to_owned());
        }
    }
    let tars: Vec<_> = records
        .iter()
        .filter(|r| r.format == ArtifactFormat::Tar)
        .collect();
    match tars.as_slice() {
        [only] => Ok(only.name.clone()),
        _ => Err(Error::not_found(format!(
            "the backup has no {ARTIFACT} artifact (it holds: {})",
            records
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_provider(crate::ID)
        .with_hint("Restore a backup taken from a bare server")),
    }
}

fn failed_detail(steps: &[StepReport], name: &str) -> String {
    steps
        .iter()
        .find(|s| s.name == name && s.status == StepStatus::Failure)
        .and_then(|s| s.error.clone())
        .unwrap_or_default()
}

/// The report of the script's run: its steps, and for a non-zero exit the
/// error the caller sees (provider `bare`, operation `restore`), whose hint
/// the failed step carries too.
pub(crate) fn outcome(
    command: &RemoteCommand,
    status: i32,
    stderr: &[u8],
    mut steps: Vec<StepReport>,
    privilege: &Elevation,
) -> RestoreReport {
    let unchanged = "The server's configuration was left exactly as it was";
    let err = match status {
        0 => return RestoreReport::finished(steps),
        EXIT_SSHD_INVALID | EXIT_NGINX_INVALID => {
            let (check, name) = if status == EXIT_SSHD_INVALID {
                ("sshd -t", "Validate sshd_config")
            } else {
                ("nginx -t", "Validate nginx")
            };
            let output = failed_detail(&steps, name);
            Error::invalid_input(format!(
                "restore refused: `{check}` rejected the configuration in the backup"
            ))
            .never_applied()
            .with_hint(format!(
                "{check} said: {output}. {unchanged}; fix the backup or restore another one"
            ))
        }
        EXIT_UNPACK => Error::new(
            ErrorKind::CommandFailed,
            format!(
                "the backup archive could not be unpacked: {}",
                failed_detail(&steps, "Unpack backup")
            ),
        )
        .never_applied()
        .with_hint(format!("{unchanged}; the archive may be damaged")),
        EXIT_SWITCH => Error::new(
            ErrorKind::CommandFailed,
            format!(
                "copying the validated configuration into place failed: {}",
                failed_detail(&steps, "Switch config")
            ),
        )
        .with_hint("Some files may already be restored: check free space and permissions, then restore again"),
        EXIT_RELOAD => {
            let failed: Vec<&str> = steps
                .iter()
                .filter(|s| s.status == StepStatus::Failure)
                .map(|s| s.name.as_str())
                .collect();
            Error::new(
                ErrorKind::CommandFailed,
                format!(
                    "the configuration was restored, but {} failed",
                    failed.join(", ")
                ),
            )
            .with_hint("Check the service with `systemctl status <unit>` and `journalctl -u <unit>` on the server")
        }
        _ => {
            let stderr_text = String::from_utf8_lossy(stderr).into_owned();
            let e = match check_status(command, status, stderr) {
                Err(e) => e,
                Ok(()) => Error::unexpected("the restore script failed"),
            };
            let hint = if steps.iter().any(|s| s.name == "Switch config") {
                "The restore stopped after the switch: check the server"
            } else {
                "The restore stopped before the switch: the server's configuration was not changed"
            };
            privilege.explain(e, &stderr_text, hint)
        }
    };
    if let Some(failed) = steps.iter_mut().find(|s| s.status == StepStatus::Failure) {
        failed.hint = err.hint().map(str::to_owned);
    }
    let err = err.with_provider(crate::ID).with_operation("restore");
    RestoreReport::stopped(steps, err)
}

/// Runs the restore script with the archive on stdin.
pub(crate) async fn run(
    transport: &dyn Transport,
    options: &BareOptions,
    privilege: &Elevation,
    source: &dyn ArtifactSource,
) -> RestoreReport {
    match run_script(transport, options, privilege, source).await {
        Ok(report) => report,
        Err(e) => RestoreReport::refused(e),
    }
}

/// [`run`], its errors before the script's report (no artifact, the
/// command not built, the connection lost) returned as such.
async fn run_script(
    transport: &dyn Transport,
    options: &BareOptions,
    privilege: &Elevation,
    source: &dyn ArtifactSource,
) -> Result<RestoreReport> {
    let name = pick_artifact(source)?;
    let script = privilege.wrap(RemoteCommand::template(SCRIPT, &[options.root.as_str()])?)?;
    let feed = restore_feed(source, &name, &script)?;
    let command = feed.command;
    let capture = Capture::new(1 << 20);
    let streamed = transport
        .exec_streaming(
            &command,
            Some(feed.stdin),
            Box::new(capture.clone()),
            TIMEOUT,
        )
        .await?;
    let steps = parse_steps(&capture.text());
    Ok(outcome(
        &command,
        streamed.status,
        &streamed.stderr,
        steps,
        privilege,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::types::Privilege;

    #[test]
    fn the_script_has_one_placeholder_and_is_valid_sh() {
        let cmd = RemoteCommand::template(SCRIPT, &["/it's"]).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(cmd.as_str())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn markers_become_steps() {
        let steps = parse_steps(
            "noise\nKASTELL_STEP unpack ok 3 files\nKASTELL_STEP validate-sshd failed sshd -t: line 2: Bad option\nKASTELL_STEP reload-ufw skipped ufw is not installed\nKASTELL_STEP odd\n",
        );
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].name, "Unpack backup");
        assert_eq!(steps[0].detail.as_deref(), Some("3 files"));
        assert_eq!(steps[1].status, StepStatus::Failure);
        assert_eq!(
            steps[1].error.as_deref(),
            Some("sshd -t: line 2: Bad option")
        );
        assert_eq!(steps[2].status, StepStatus::Skipped);
    }

    #[test]
    fn refused_validation_is_invalid_input_naming_the_check() {
        let p = Elevation::new(Privilege::LoginUser, "x");
        let cmd = RemoteCommand::fixed("sh");
        let steps =
            parse_steps("KASTELL_STEP unpack ok 1\nKASTELL_STEP validate-sshd failed Bad option\n");
        let report = outcome(&cmd, EXIT_SSHD_INVALID, b"", steps, &p);
        // The steps that ran come back beside the error.
        let shown = report.steps.clone();
        let err = report.into_result().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.may_have_taken_effect());
        assert!(err.message().contains("sshd -t"));
        assert!(err.hint().unwrap().contains("Bad option"));
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[1].name, "Validate sshd_config");
        assert_eq!(shown[1].status, StepStatus::Failure);
        assert!(shown[1].hint.as_deref().unwrap().contains("Bad option"));

        let steps =
            parse_steps("KASTELL_STEP switch ok x\nKASTELL_STEP reload-nginx failed boom\n");
        let err = outcome(&cmd, EXIT_RELOAD, b"", steps, &p)
            .into_result()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        assert!(err.message().contains("Reload nginx"));
        let err = outcome(&cmd, 2, b"tar: oops", Vec::new(), &p)
            .into_result()
            .unwrap_err();
        assert!(err.message().contains("tar: oops"));
        assert!(err.hint().unwrap().contains("not changed"));
    }
}
