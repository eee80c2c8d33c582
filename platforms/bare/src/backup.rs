//! Streaming the server's configuration files into one tar artifact.

use std::time::Duration;

use kastell_core::transport::check_status;
use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSpec, BackupReport};
use kastell_core::{ArtifactSinkExt, Error, ErrorKind, RemoteCommand, Result, Transport};

use crate::options::{BareOptions, DEFAULT_BACKUP_PATHS, relative_path};
use crate::remote::Elevation;

/// The artifact a bare backup writes.
pub const ARTIFACT: &str = "bare-config.tar";
/// The artifact name of the original tool's bare backups (handed out
/// decompressed by the source).
pub const LEGACY_ARTIFACT: &str = "bare-config.tar.gz";

const LIST_TIMEOUT: Duration = Duration::from_secs(60);
const TAR_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Prints `present <path>` or `missing <path>` for every newline-separated
/// relative path, resolved under the root.
const LIST_SCRIPT: &str = "set -eu; set -f; IFS='
'; root={}; list={}; cd \"$root\"; for p in $list; do \
if [ -e \"$p\" ] || [ -L \"$p\" ]; then echo \"present $p\"; else echo \"missing $p\"; fi; done";

/// Streams a tar of the newline-separated relative paths to stdout.
const TAR_SCRIPT: &str = "set -eu; set -f; IFS='
'; root={}; list={}; set -- $list; exec tar -C \"$root\" -cf - -- \"$@\"";

/// The configured paths (or the default list) as `(absolute, relative)`
/// pairs, refusing any that is not absolute or contains `..`.
pub(crate) fn plan(configured: &[String]) -> Result<Vec<(String, String)>> {
    let paths: Vec<String> = if configured.is_empty() {
        DEFAULT_BACKUP_PATHS
            .iter()
            .map(|p| (*p).to_owned())
            .collect()
    } else {
        configured.to_vec()
    };
    let mut planned: Vec<(String, String)> = Vec::new();
    for path in paths {
        let relative = relative_path(&path)?;
        if !planned.iter().any(|(_, r)| *r == relative) {
            planned.push((path, relative));
        }
    }
    Ok(planned)
}

/// Splits `plan` into the paths the list script reported present and the
/// absolute names of the missing ones.
pub(crate) fn parse_listing(
    plan: &[(String, String)],
    output: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for (absolute, relative) in plan {
        if output
            .lines()
            .any(|l| l.strip_prefix("present ") == Some(relative))
        {
            present.push(relative.clone());
        } else if output
            .lines()
            .any(|l| l.strip_prefix("missing ") == Some(relative))
        {
            missing.push(absolute.clone());
        } else {
            return Err(Error::unexpected(format!(
                "the path listing did not mention {absolute}: {output}"
            ))
            .with_provider(crate::ID));
        }
    }
    Ok((present, missing))
}

/// Runs the backup: one listing, then one streamed `tar` into the sink.
pub(crate) async fn run(
    transport: &dyn Transport,
    options: &BareOptions,
    privilege: &Elevation,
    configured: &[String],
    platform_version: String,
    sink: &mut dyn ArtifactSink,
) -> Result<BackupReport> {
    let plan = plan(configured)?;
    let list: Vec<&str> = plan.iter().map(|(_, r)| r.as_str()).collect();
    let list = list.join("\n");

    let listing = privilege.wrap(RemoteCommand::template(
        LIST_SCRIPT,
        &[options.root.as_str(), &list],
    )?)?;
    let out = transport.exec(&listing, LIST_TIMEOUT).await?;
    if let Err(e) = check_status(&listing, out.status, &out.stderr) {
        return Err(privilege.explain(
            e,
            &out.stderr_text(),
            &format!(
                "Check that {} exists and is readable on the server",
                options.root
            ),
        ));
    }
    let (present, skipped) = parse_listing(&plan, &out.stdout_text())?;
    if present.is_empty() {
        return Err(Error::not_found(format!(
            "none of the backup paths exist under {}: {}",
            options.root,
            skipped.join(", ")
        ))
        .with_provider(crate::ID)
        .with_hint("Set the server's backup paths to files or directories that exist"));
    }

    let tar = privilege.wrap(RemoteCommand::template(
        TAR_SCRIPT,
        &[options.root.as_str(), &present.join("\n")],
    )?)?;
    // Compressed on the server as the engine planned: the compressor runs
    // as the login user; only tar needs the privilege.
    let spec = ArtifactSpec {
        name: ARTIFACT.to_owned(),
        format: ArtifactFormat::Tar,
    };
    let record = match sink.stream(transport, &spec, &tar, None, TAR_TIMEOUT).await {
        Ok(record) => record,
        // The message carries tar's (or sudo's) stderr.
        Err(e) if e.kind() == ErrorKind::CommandFailed => {
            let stderr = e.message().to_owned();
            return Err(privilege.explain(
                e,
                &stderr,
                "tar could not read every file: check the permissions of the backup paths",
            ));
        }
        Err(e) => return Err(e),
    };
    let mut warnings = Vec::new();
    if !skipped.is_empty() {
        warnings.push(format!(
            "not on the server, skipped: {}",
            skipped.join(", ")
        ));
    }
    Ok(BackupReport {
        platform_version,
        artifacts: vec![record],
        skipped,
        warnings,
        apps: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_uses_defaults_dedupes_and_refuses_bad_paths() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.len(), DEFAULT_BACKUP_PATHS.len());
        assert_eq!(p[0], ("/etc/nginx".to_owned(), "etc/nginx".to_owned()));
        let p = plan(&["/etc/x".into(), "/etc/x/".into()]).unwrap();
        assert_eq!(p.len(), 1);
        assert!(plan(&["/etc/../root".into()]).is_err());
        assert!(plan(&["etc/x".into()]).is_err());
    }

    #[test]
    fn listing_names_missing_paths_and_needs_every_path() {
        let p = plan(&["/etc/a b".into(), "/etc/c".into()]).unwrap();
        let (present, missing) = parse_listing(&p, "present etc/a b\nmissing etc/c\n").unwrap();
        assert_eq!(present, vec!["etc/a b"]);
        assert_eq!(missing, vec!["/etc/c"]);
        assert!(parse_listing(&p, "present etc/a b\n").is_err());
    }

    #[test]
    fn scripts_split_the_list_on_newlines_only() {
        let cmd = RemoteCommand::template(TAR_SCRIPT, &["/r", "etc/a b\netc/c"]).unwrap();
        assert!(cmd.as_str().contains("list='etc/a b\netc/c'"));
        let script = RemoteCommand::template(
            "set -eu; set -f; IFS='\n'; list={}; set -- $list; printf '<%s>' \"$@\"",
            &["etc/a b\netc/*"],
        )
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.as_str())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "<etc/a b><etc/*>");
    }
}
