//! The original tool's command spellings, rewritten into kastell's before
//! clap parses the command line:
//!
//! | the original            | kastell                        |
//! |-------------------------|--------------------------------|
//! | `backup web-1`          | `backup create web-1`          |
//! | `backup --all`          | `backup create --all`          |
//! | `restore web-1 [...]`   | `backup restore web-1 [...]`   |
//! | `snapshot web-1`        | `snapshot list web-1`          |
//!
//! `backup list` and `backup cleanup` are kastell's own commands with the
//! original's meaning. Only a word after `backup` or `snapshot` that is not
//! one of the group's subcommands is taken as a server, so every kastell
//! command keeps its meaning, and a server named like a subcommand is
//! reached with the full spelling (`backup create list`).

use std::ffi::OsString;

use clap::CommandFactory;

use super::Cli;

/// A group that, followed by a server instead of a subcommand, means one
/// of its subcommands: the group and that subcommand.
const DEFAULT_SUBCOMMANDS: &[(&str, &str)] = &[("backup", "create"), ("snapshot", "list")];

/// Top-level words of the original that are a group's subcommand here.
const MOVED: &[(&str, &[&str])] = &[("restore", &["backup", "restore"])];

/// Global flags that may stand between the group and what follows it.
const GLOBAL_FLAGS: &[&str] = &["--json"];

/// `args` (the program name first) with the original's spellings
/// replaced by kastell's; anything else is returned unchanged.
pub(crate) fn rewrite(mut args: Vec<OsString>) -> Vec<OsString> {
    // The command word: the first argument that is not a flag.
    let Some(at) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1)
    else {
        return args;
    };
    let word = args[at].to_string_lossy().into_owned();
    if let Some((_, path)) = MOVED.iter().find(|(from, _)| *from == word) {
        args.splice(at..=at, path.iter().map(OsString::from));
        return args;
    }
    let Some((group, default)) = DEFAULT_SUBCOMMANDS.iter().find(|(g, _)| *g == word) else {
        return args;
    };
    let next = args
        .iter()
        .skip(at + 1)
        .map(|a| a.to_string_lossy())
        .find(|a| !GLOBAL_FLAGS.contains(&a.as_ref()));
    let Some(next) = next else {
        // `kastell backup` alone: the group's help, as before.
        return args;
    };
    if matches!(next.as_ref(), "-h" | "--help" | "help") || is_subcommand(group, &next) {
        return args;
    }
    args.insert(at + 1, OsString::from(*default));
    args
}

/// Whether `word` names a subcommand (or its alias) of `group`.
fn is_subcommand(group: &str, word: &str) -> bool {
    Cli::command().find_subcommand(group).is_some_and(|g| {
        g.get_subcommands()
            .any(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(line: &str) -> String {
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        let out: Vec<String> = rewrite(args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        out.join(" ")
    }

    #[test]
    fn the_help_names_every_original_spelling() {
        let help = Cli::command().render_long_help().to_string();
        for (group, _) in DEFAULT_SUBCOMMANDS {
            assert!(help.contains(&format!("kastell {group} web-1")), "{help}");
        }
        for (word, _) in MOVED {
            assert!(help.contains(&format!("kastell {word} web-1")), "{help}");
        }
    }

    #[test]
    fn the_originals_words_become_kastells() {
        for (original, ours) in [
            ("kastell backup web-1", "kastell backup create web-1"),
            ("kastell backup --all", "kastell backup create --all"),
            (
                "kastell --json backup web-1 --dry-run",
                "kastell --json backup create web-1 --dry-run",
            ),
            (
                "kastell backup --json web-1",
                "kastell backup create --json web-1",
            ),
            (
                "kastell restore web-1 --backup b1",
                "kastell backup restore web-1 --backup b1",
            ),
            ("kastell snapshot web-1", "kastell snapshot list web-1"),
        ] {
            assert_eq!(rewritten(original), ours);
        }
    }

    /// The operation and server `line` parses to.
    fn parsed(line: &str) -> (String, Option<String>) {
        let cli = <Cli as clap::Parser>::try_parse_from(line.split(' '))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let super::super::Command::Operation(call) = cli.command else {
            panic!("{line} is not an operation");
        };
        (call.op.0.id().as_str().to_owned(), call.target.server)
    }

    #[test]
    fn the_originals_spellings_parse_to_kastells_operations() {
        let web = Some("web-1".to_owned());
        assert_eq!(
            parsed("kastell backup web-1"),
            ("backup-create".into(), web.clone())
        );
        assert_eq!(parsed("kastell backup list"), ("backup-list".into(), None));
        assert_eq!(
            parsed("kastell backup list web-1"),
            ("backup-list".into(), web.clone())
        );
        // A server named like a subcommand, by the full spelling.
        assert_eq!(
            parsed("kastell backup create list"),
            ("backup-create".into(), Some("list".to_owned()))
        );
        assert_eq!(
            parsed("kastell snapshot web-1"),
            ("snapshot-list".into(), web.clone())
        );
        let cli = <Cli as clap::Parser>::try_parse_from(
            "kastell restore web-1 --backup 2026-01-01_00-00-00-000 --force".split(' '),
        )
        .unwrap();
        let super::super::Command::Operation(call) = cli.command else {
            panic!("restore is an operation");
        };
        assert_eq!(call.op.0.id().as_str(), "backup-restore");
        assert_eq!(call.target.server, web);
        assert!(call.target.force);
        assert_eq!(call.op.0.target(), Some("2026-01-01_00-00-00-000"));
        let cli = <Cli as clap::Parser>::try_parse_from(["kastell", "backup", "cleanup"]).unwrap();
        assert!(matches!(
            cli.command,
            super::super::Command::Backup(super::super::backup::BackupCommand::Cleanup(_))
        ));
    }

    #[test]
    fn kastells_own_commands_are_left_alone() {
        for line in [
            "kastell backup list",
            "kastell backup cleanup --force",
            "kastell backup create list",
            "kastell backup restore web-1",
            "kastell backup",
            "kastell backup --help",
            "kastell backup help",
            "kastell snapshot delete web-1",
            "kastell snapshot",
            "kastell server list",
            "kastell restart web-1",
            "kastell --json",
            "kastell",
        ] {
            assert_eq!(rewritten(line), line);
        }
    }
}
