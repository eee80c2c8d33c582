//! The command line as clap sees it: the commands of their own
//! ([`super::Command`]) plus one subcommand per operation that names a
//! command line ([`crate::ops::CliCommand`]), built from the list of
//! operations ([`crate::ops::catalog`]). An operation's arguments come
//! from its own `Args` type; how it picks servers (one, `--all`,
//! `--dry-run`, `--force`) from its [`CliTarget`].

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser};

use super::fleet::{DEFAULT_CONCURRENCY, FleetArgs, OneArgs, ReadFleetArgs, RolloutFleetArgs};
use super::op::Op;
use super::{Cli, Command};
use crate::ops::{CliTarget, Dyn, catalog};

/// What `kastell --help` says about the original tool's spellings, which
/// [`super::spelling::rewrite`] turns into kastell's before parsing (so
/// they are no subcommands clap could list).
const ORIGINAL_SPELLINGS: &str = "The original tool's spellings work too: \
`kastell backup web-1` (backup create), `kastell restore web-1 [--backup ID]` \
(backup restore), `kastell snapshot web-1` (snapshot list).";

/// The commands of their own, as clap derives them.
#[derive(Debug, Parser)]
#[command(
    name = "kastell",
    version,
    about,
    propagate_version = true,
    after_help = ORIGINAL_SPELLINGS
)]
struct Fixed {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The server argument of read-only operations.
#[derive(Debug, Clone, Args)]
struct ReadTarget {
    /// The server (name or IP); optional when there is only one.
    server: Option<String>,
}

/// The server-picking flags an operation's command gets: from its
/// [`CliTarget`], except that an operation that only reads never gets
/// `--dry-run` or `--force` (there is nothing to plan or confirm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flags {
    /// [`RolloutFleetArgs`]: disruptive work, whose `--all` is a rollout.
    Rollout,
    /// [`FleetArgs`].
    Fleet,
    /// [`ReadFleetArgs`].
    ReadFleet,
    /// [`OneArgs`].
    One,
    /// [`ReadTarget`].
    Read,
}

impl Flags {
    fn of(op: &dyn Dyn) -> Option<Self> {
        let reads = op.spec().rule.reads_only();
        let disruptive = op.spec().rule.category == crate::policy::Category::Disruptive;
        Some(match (op.spec().cli?.target, reads) {
            (CliTarget::Fleet, false) if disruptive => Self::Rollout,
            (CliTarget::Fleet, false) => Self::Fleet,
            (CliTarget::Fleet, true) => Self::ReadFleet,
            (CliTarget::One, false) => Self::One,
            (CliTarget::One | CliTarget::Read, _) => Self::Read,
        })
    }
}

/// A command-line call of an operation: the call and how it picks
/// servers.
#[derive(Debug, Clone)]
pub struct OpCall {
    /// The call.
    pub op: Op,
    /// Which servers, and whether to plan or confirm.
    pub target: FleetArgs,
}

/// The help of group words the operations create (`snapshot`).
const GROUPS: &[(&str, &str)] = &[(
    "snapshot",
    "Provider snapshots: create, list, delete, restore.",
)];

/// `command` with every operation's subcommand added.
fn with_operations(mut command: clap::Command) -> clap::Command {
    for (order, op) in catalog::all().iter().enumerate() {
        if let Some(cli) = op.spec().cli {
            command = insert(command, cli.path, leaf(*op, order));
        }
    }
    command
}

/// The subcommand of `op`.
fn leaf(op: &'static dyn Dyn, order: usize) -> clap::Command {
    let Some(cli) = op.spec().cli else {
        return clap::Command::new(op.spec().rule.id);
    };
    let name = cli.path.last().copied().unwrap_or(op.spec().rule.id);
    let command = clap::Command::new(name);
    let command = match Flags::of(op) {
        Some(Flags::Rollout) => RolloutFleetArgs::augment_args(command),
        Some(Flags::Fleet) => FleetArgs::augment_args(command),
        Some(Flags::ReadFleet) => ReadFleetArgs::augment_args(command),
        Some(Flags::One) => OneArgs::augment_args(command),
        Some(Flags::Read) | None => ReadTarget::augment_args(command),
    };
    // Last: deriving `Args` sets the help from the argument type's doc.
    op.augment(command)
        .about(sentence(cli.about))
        .display_order(100 + order)
}

/// `text` without its final period, as clap shows one-line help.
fn sentence(text: &'static str) -> &'static str {
    text.strip_suffix('.').unwrap_or(text)
}

/// `leaf` added to `command` under the group words of `path` (all but
/// the last), creating a group that does not exist yet.
fn insert(
    command: clap::Command,
    path: &'static [&'static str],
    leaf: clap::Command,
) -> clap::Command {
    let [group, rest @ ..] = path else {
        return command;
    };
    if rest.is_empty() {
        return command.subcommand(leaf);
    }
    let group = *group;
    if command.find_subcommand(group).is_some() {
        return command.mut_subcommand(group, |g| insert(g, rest, leaf));
    }
    let about = GROUPS
        .iter()
        .find(|(name, _)| *name == group)
        .map_or("", |(_, about)| about);
    let created = clap::Command::new(group)
        .about(sentence(about))
        .subcommand_required(true)
        .arg_required_else_help(true);
    command.subcommand(insert(created, rest, leaf))
}

/// The operation call `matches` selects, if it selects one.
fn operation(matches: &ArgMatches) -> Result<Option<OpCall>, clap::Error> {
    let mut path = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    let Some(op) = catalog::all()
        .iter()
        .copied()
        .find(|op| op.spec().cli.is_some_and(|c| c.path == path.as_slice()))
    else {
        return Ok(None);
    };
    let target = match Flags::of(op) {
        Some(Flags::Rollout) => RolloutFleetArgs::from_arg_matches(leaf)?.into(),
        Some(Flags::Fleet) => FleetArgs::from_arg_matches(leaf)?,
        Some(Flags::ReadFleet) => ReadFleetArgs::from_arg_matches(leaf)?.into(),
        Some(Flags::One) => OneArgs::from_arg_matches(leaf)?.into(),
        Some(Flags::Read) | None => FleetArgs {
            server: ReadTarget::from_arg_matches(leaf)?.server,
            all: false,
            concurrency: DEFAULT_CONCURRENCY,
            dry_run: false,
            force: false,
            streams: false,
            rollout: None,
        },
    };
    // `logs -f` prints its lines as they come.
    let target = FleetArgs {
        streams: matches!(leaf.try_get_one::<bool>("follow"), Ok(Some(true))),
        ..target
    };
    let call = op.call_from_matches(leaf)?;
    Ok(Some(OpCall {
        op: Op(call),
        target,
    }))
}

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        with_operations(Fixed::command())
    }

    fn command_for_update() -> clap::Command {
        with_operations(Fixed::command_for_update())
    }
}

impl FromArgMatches for Cli {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let json = matches.get_flag("json");
        if let Some(call) = operation(matches)? {
            return Ok(Self {
                json,
                command: Command::Operation(call),
            });
        }
        let fixed = Fixed::from_arg_matches(matches)?;
        Ok(Self {
            json: fixed.json,
            command: fixed.command,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// Parsing goes through [`super::spelling::rewrite`] first, so the
/// original tool's spellings (`kastell backup web-1`, `kastell restore
/// web-1`) parse to kastell's commands.
impl Parser for Cli {
    fn parse() -> Self {
        Self::parse_from(std::env::args_os())
    }

    fn try_parse() -> Result<Self, clap::Error> {
        Self::try_parse_from(std::env::args_os())
    }

    fn parse_from<I, T>(itr: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(itr).unwrap_or_else(|e| e.exit())
    }

    fn try_parse_from<I, T>(itr: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = super::spelling::rewrite(itr.into_iter().map(Into::into).collect());
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(args)?;
        Self::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    /// Every command path, groups included.
    fn paths(command: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            paths(sub, path, out);
        }
    }

    #[test]
    fn an_operations_help_is_its_own_about() {
        let command = Cli::command();
        let restart = command.find_subcommand("restart").unwrap();
        assert_eq!(
            restart.get_about().map(ToString::to_string).as_deref(),
            Some("Reboot a server and prove it (a new boot id), then check health")
        );
        let snapshot = command.find_subcommand("snapshot").unwrap();
        assert!(snapshot.find_subcommand("delete").is_some());
    }

    #[test]
    fn every_subcommand_has_help() {
        let mut all = Vec::new();
        paths(&Cli::command(), Vec::new(), &mut all);
        assert!(all.len() > 30, "{all:?}");
        for path in all {
            let argv = std::iter::once("kastell".to_owned())
                .chain(path.iter().cloned())
                .chain(["--help".to_owned()]);
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{path:?}: {err}");
        }
    }

    #[test]
    fn every_operation_with_a_command_line_parses_to_itself() {
        for op in catalog::all() {
            let Some(cli) = op.spec().cli else { continue };
            let argv = std::iter::once("kastell").chain(cli.path.iter().copied());
            let parsed =
                Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{:?}: {e}", cli.path));
            let Command::Operation(call) = parsed.command else {
                panic!("{:?} is not an operation call", cli.path);
            };
            assert_eq!(call.op.0.id(), op.id());
            assert_eq!(call.op.title(), cli.path.join(" "));
            // What overwrites or deletes is never run fleet-wide; snapshot
            // rotation is the one exception: it deletes only kastell's own
            // snapshots its keep rules let go, refuses when the schedule
            // looks broken, and the fleet-wide run is what its timer does.
            if op.spec().rule.category == crate::policy::Category::Destructive
                && op.id() != <crate::ops::SnapshotRotateOp as crate::ops::Operation>::ID
            {
                assert_eq!(cli.target, CliTarget::One, "{:?}", cli.path);
            }
        }
    }

    /// The long flags `kastell <path> --help` lists.
    fn flags(path: &[&str]) -> Vec<String> {
        let mut command = Cli::command();
        command.build();
        let mut leaf = &command;
        for word in path {
            leaf = leaf.find_subcommand(word).unwrap();
        }
        leaf.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    }

    #[test]
    fn help_lists_no_flag_that_does_nothing_there() {
        let mut checked = 0;
        for op in catalog::all() {
            let Some(cli) = op.spec().cli else { continue };
            let listed = flags(cli.path);
            let has = |flag: &str| listed.iter().any(|l| l == flag);
            // Nothing to plan or confirm when it only reads.
            if op.spec().rule.reads_only() {
                assert!(
                    !has("dry-run") && !has("force"),
                    "{:?}: {listed:?}",
                    cli.path
                );
                checked += 1;
            } else {
                assert!(has("dry-run") && has("force"), "{:?}: {listed:?}", cli.path);
            }
            // A listing picks no backup.
            if op.spec().rule.id.ends_with("-list") {
                assert!(!has("backup"), "{:?} offers --backup", cli.path);
            }
            // --all and --concurrency come together, on fleet commands only.
            assert_eq!(has("all"), has("concurrency"), "{:?}", cli.path);
            assert_eq!(has("all"), cli.target == CliTarget::Fleet, "{:?}", cli.path);
        }
        assert!(checked >= 8, "read commands checked: {checked}");
        for path in [
            &["status"][..],
            &["backup", "list"],
            &["monitor"],
            &["health"],
        ] {
            let listed = flags(path);
            assert!(
                !listed
                    .iter()
                    .any(|f| f == "dry-run" || f == "force" || f == "backup"),
                "{path:?}: {listed:?}"
            );
        }
        // A shared argument says what it does for each command.
        let help = |path: &[&str]| {
            let mut command = Cli::command();
            command.build();
            let mut leaf = &command;
            for word in path {
                leaf = leaf.find_subcommand(word).unwrap();
            }
            let repo = leaf.get_arguments().find(|a| a.get_id() == "repo").unwrap();
            repo.get_help().unwrap().to_string()
        };
        assert!(help(&["backup", "create"]).starts_with("Also store the new backup"));
        for path in [
            &["backup", "list"][..],
            &["backup", "restore"],
            &["backup", "verify"],
        ] {
            let text = help(path);
            assert!(
                text.starts_with("Read from this backup repository"),
                "{path:?}: {text}"
            );
        }
        // What they do offer still parses: status across the fleet.
        let cli =
            Cli::try_parse_from(["kastell", "status", "--all", "--concurrency", "4"]).unwrap();
        let Command::Operation(call) = cli.command else {
            panic!("status is an operation");
        };
        assert!(call.target.all && call.target.concurrency == 4 && !call.target.dry_run);
        let err = Cli::try_parse_from(["kastell", "status", "--dry-run"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn an_operations_arguments_are_parsed_by_its_own_type() {
        let cli = Cli::try_parse_from([
            "kastell", "backup", "restore", "web-1", "--backup", "b1", "--repo", "off", "--force",
        ])
        .unwrap();
        let Command::Operation(call) = cli.command else {
            panic!("backup restore is an operation");
        };
        assert_eq!(call.target.server.as_deref(), Some("web-1"));
        assert!(call.target.force && !call.target.all);
        assert_eq!(call.op.0.target(), Some("b1"));
        assert_eq!(call.op.0.repo(), Some("off"));
        let err = Cli::try_parse_from(["kastell", "backup", "restore", "--all"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
    }
}
