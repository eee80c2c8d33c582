//! Non-interactive apt upgrades.

use std::time::Duration;

use kastell_core::transport::check_status;
use kastell_core::types::{UpdateOptions, UpdateReport, tail};
use kastell_core::{Error, Output, RemoteCommand, Result, Transport};

use crate::options::BareOptions;
use crate::remote::Elevation;

/// Refreshes the package lists.
pub const APT_UPDATE: &str = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l \
     apt-get update -q -o DPkg::Lock::Timeout=600";
/// Lists what an upgrade would install, without locking or changing anything.
pub const APT_SIMULATE: &str = "apt-get -s -o Debug::NoLocking=1 upgrade";
/// Upgrades the installed packages, keeping locally changed config files.
pub const APT_UPGRADE: &str = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l \
     apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef \
     -o Dpkg::Options::=--force-confold upgrade";
/// Answers `yes` when the given flag file exists.
const REBOOT_CHECK: &str = "if [ -e {} ]; then echo yes; else echo no; fi";

const TAIL: usize = 4000;

/// The package names of the `Inst <pkg> ...` lines of a simulation, in
/// order, without duplicates.
pub(crate) fn parse_inst(output: &str) -> Vec<String> {
    let mut packages: Vec<String> = Vec::new();
    for line in output.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("Inst") {
            continue;
        }
        if let Some(name) = words.next() {
            if !packages.iter().any(|p| p == name) {
                packages.push(name.to_owned());
            }
        }
    }
    packages
}

fn failure(privilege: &Elevation, command: &RemoteCommand, out: &Output, what: &str) -> Error {
    let stderr = out.stderr_text();
    let err = match check_status(command, out.status, &out.stderr) {
        Err(e) => e,
        Ok(()) => return Error::unexpected(format!("{what} reported no failure")),
    };
    if out.status == 127 && stderr.contains("apt-get") {
        return Error::unsupported(format!("{what}: apt-get is not installed on this server"))
            .with_provider(crate::ID)
            .with_hint("The bare platform updates Debian and Ubuntu servers (apt) only");
    }
    let hint = if stderr.contains("Could not get lock") || stderr.contains("is held by process") {
        "Another apt or dpkg run (often unattended-upgrades) holds the lock: try again later"
    } else if stderr.contains("dpkg was interrupted") {
        "A previous dpkg run was interrupted: run `dpkg --configure -a` on the server, then update again"
    } else {
        "Read apt's output above; `apt-get update` problems are usually an unreachable mirror"
    };
    privilege
        .explain(
            err.with_message(format!("{what} failed: {}", tail(&stderr, 1000))),
            &stderr,
            hint,
        )
        .with_operation("update")
}

async fn run_checked(
    transport: &dyn Transport,
    privilege: &Elevation,
    command: &RemoteCommand,
    timeout: Duration,
    what: &str,
) -> Result<Output> {
    let out = transport.exec(command, timeout).await?;
    if out.success() {
        Ok(out)
    } else {
        Err(failure(privilege, command, &out, what))
    }
}

/// Runs (or, for a dry run, simulates) the upgrade.
///
/// A dry run only simulates against the package lists already on the
/// server: `apt-get update` writes those lists, and a dry run changes
/// nothing.
pub(crate) async fn run(
    transport: &dyn Transport,
    options: &BareOptions,
    privilege: &Elevation,
    update: &UpdateOptions,
) -> Result<UpdateReport> {
    // An apt run killed midway leaves dpkg half-configured: allow the longer
    // of the caller's timeout and the platform's.
    let timeout = update.timeout.max(options.update_timeout);
    let refresh = privilege.wrap(RemoteCommand::fixed(APT_UPDATE))?;
    let simulate = RemoteCommand::fixed(APT_SIMULATE);
    let upgrade = privilege.wrap(RemoteCommand::fixed(APT_UPGRADE))?;
    // A real run lists what it ran; a dry run lists the simulation it ran
    // and the two commands a real run would add.
    let mut commands = vec![refresh.as_str().to_owned(), simulate.as_str().to_owned()];

    if !update.dry_run {
        run_checked(transport, privilege, &refresh, timeout, "apt-get update").await?;
    }
    let simulated = run_checked(
        transport,
        privilege,
        &simulate,
        timeout,
        "apt-get -s upgrade",
    )
    .await?;
    let packages = parse_inst(&String::from_utf8_lossy(&simulated.stdout));

    let mut output_tail = tail(&String::from_utf8_lossy(&simulated.stdout), TAIL);
    if update.dry_run {
        commands.push(upgrade.as_str().to_owned());
    } else if !packages.is_empty() {
        commands.push(upgrade.as_str().to_owned());
        let upgraded =
            run_checked(transport, privilege, &upgrade, timeout, "apt-get upgrade").await?;
        output_tail = tail(&String::from_utf8_lossy(&upgraded.stdout), TAIL);
    }

    let flag = options.under_root("var/run/reboot-required");
    let check = RemoteCommand::template(REBOOT_CHECK, &[&flag])?;
    let reboot_required = transport
        .exec(&check, Duration::from_secs(30))
        .await?
        .stdout_text()
        == "yes";

    let hint = if update.dry_run {
        Some(format!(
            "Dry run: simulated against the package lists already on the server (apt-get update \
             was not run, as a dry run changes nothing); {} package(s) would be upgraded",
            packages.len()
        ))
    } else if reboot_required {
        Some("The server asks for a reboot to finish the update".to_owned())
    } else if packages.is_empty() {
        Some("Every package was already up to date".to_owned())
    } else {
        None
    };
    Ok(UpdateReport {
        version_before: None,
        version_after: None,
        packages_upgraded: packages,
        reboot_required,
        commands,
        output_tail,
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_lines_name_the_packages() {
        let out = "NOTE: This is only a simulation!\n\
                   Reading package lists...\n\
                   Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])\n\
                   Inst openssl [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])\n\
                   Conf libssl3 (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])\n\
                   Inst libssl3 [dup]\n\
                   Installed: nothing\n";
        assert_eq!(parse_inst(out), vec!["libssl3", "openssl"]);
        assert!(parse_inst("0 upgraded, 0 newly installed").is_empty());
    }
}
