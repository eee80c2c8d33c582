//! A suggestion as a command a shell user can type: `kastell backup
//! restore web-1 --backup 2026-01-01_00-00-00-000`.
//!
//! Everything comes from the operation the suggestion names: its command
//! words ([`CliCommand::path`](crate::ops::CliCommand::path)), whether it
//! takes a server, and its flags, found among the arguments its own `Args`
//! type adds to a clap command ([`Dyn::augment`]): an MCP argument name
//! (`backupId`) is its field's name in camelCase, which is the clap
//! argument's id in snake_case (`backup_id`), whose long flag is the one
//! to type (`--backup`).

use crate::ops::operation::{Dyn, Scope};
use crate::state::store::ServerRecord;

/// The program a suggested command starts with.
const PROGRAM: &str = "kastell";

/// The command line that runs `op` on `server` with the MCP arguments
/// `args`, its words quoted for a POSIX shell. None (the suggestion is
/// left out on the command line) when `op` has no command of its own, when
/// an argument has no flag there, or when a value cannot be quoted (a NUL).
pub(super) fn command_line(
    op: &dyn Dyn,
    server: Option<&ServerRecord>,
    args: &[(&'static str, String)],
) -> Option<String> {
    let spec = op.spec();
    let cli = spec.cli?;
    let mut words: Vec<String> = std::iter::once(PROGRAM)
        .chain(cli.path.iter().copied())
        .map(str::to_owned)
        .collect();
    if let (Some(server), Scope::Server) = (server, spec.scope) {
        words.push(dashless(&server.name)?);
    }
    let command = op.augment(clap::Command::new(spec.rule.id));
    for (name, value) in args {
        let id = snake_case(name);
        let arg = command
            .get_arguments()
            .find(|a| a.get_id() == id.as_str())?;
        let long = arg.get_long()?;
        if arg.get_action().takes_values() {
            if value.starts_with('-') {
                // Not to be read as a flag.
                words.push(format!("--{long}={value}"));
            } else {
                words.extend([format!("--{long}"), value.clone()]);
            }
        } else if value == "true" {
            words.push(format!("--{long}"));
        }
    }
    shlex::try_join(words.iter().map(String::as_str)).ok()
}

/// A positional word clap will not take for a flag (None for one that
/// starts with `-`: such a suggestion is left out).
fn dashless(word: &str) -> Option<String> {
    (!word.starts_with('-')).then(|| word.to_owned())
}

/// `backupId` as clap's derive names the field: `backup_id`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::ops::backup::{BackupCreateOp, BackupRestoreOp};
    use crate::ops::catalog;
    use crate::ops::info::ServerListOp;
    use crate::ops::operation::Operation;
    use crate::ops::snapshot::SnapshotDeleteOp;
    use crate::policy::OpId;
    use crate::surfaces::cli::{Cli, Command};

    fn web1() -> ServerRecord {
        ServerRecord::new("1", "web-1", "203.0.113.10")
    }

    fn line(op: OpId, server: Option<&ServerRecord>, args: &[(&'static str, String)]) -> String {
        let op = catalog::find(op.as_str()).unwrap();
        command_line(op, server, args).unwrap()
    }

    /// Parses `line` as the shell would and checks it calls `op` on `server`.
    fn parses_to(line: &str, op: OpId, server: Option<&str>) -> crate::surfaces::cli::OpCall {
        let words = shlex::split(line).unwrap();
        let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
        let Command::Operation(call) = cli.command else {
            panic!("{line} is not an operation");
        };
        assert_eq!(call.op.0.id(), op, "{line}");
        assert_eq!(call.target.server.as_deref(), server, "{line}");
        call
    }

    #[test]
    fn mcp_argument_names_become_the_operations_own_flags() {
        assert_eq!(snake_case("backupId"), "backup_id");
        let server = web1();
        let text = line(BackupCreateOp::ID, Some(&server), &[]);
        assert_eq!(text, "kastell backup create web-1");
        parses_to(&text, BackupCreateOp::ID, Some("web-1"));

        let id = "2026-01-01_00-00-00-000".to_owned();
        let text = line(
            BackupRestoreOp::ID,
            Some(&server),
            &[("backupId", id.clone())],
        );
        assert_eq!(text, format!("kastell backup restore web-1 --backup {id}"));
        let call = parses_to(&text, BackupRestoreOp::ID, Some("web-1"));
        assert_eq!(call.op.0.target(), Some(id.as_str()));

        let text = line(
            SnapshotDeleteOp::ID,
            Some(&server),
            &[("snapshotId", "-9 x".into())],
        );
        assert_eq!(text, "kastell snapshot delete web-1 '--snapshot=-9 x'");
        let call = parses_to(&text, SnapshotDeleteOp::ID, Some("web-1"));
        assert_eq!(call.op.0.target(), Some("-9 x"));
    }

    #[test]
    fn what_has_no_command_line_is_left_out() {
        let server = web1();
        // `server list` is a command of its own, not the operation's.
        let list = catalog::find(ServerListOp::ID.as_str()).unwrap();
        assert_eq!(command_line(list, Some(&server), &[]), None);
        // An argument the operation does not take.
        let create = catalog::find(BackupCreateOp::ID.as_str()).unwrap();
        assert_eq!(
            command_line(create, Some(&server), &[("snapshotId", "1".into())]),
            None
        );
        // A server name clap would read as a flag.
        let odd = ServerRecord::new("2", "-web", "203.0.113.11");
        assert_eq!(command_line(create, Some(&odd), &[]), None);
    }
}
