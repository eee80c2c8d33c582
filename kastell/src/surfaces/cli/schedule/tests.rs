use super::*;
use crate::surfaces::cli::{Cli, Command};
use clap::Parser;

fn parse(args: &[&str]) -> std::result::Result<InstallArgs, clap::Error> {
    let cli = Cli::try_parse_from(args)?;
    match cli.command {
        Command::Schedule(ScheduleCommand::Install(args)) => Ok(*args),
        other => panic!("install expected, got {other:?}"),
    }
}

#[test]
fn install_arguments_parse_and_conflict() {
    let args = parse(&[
        "kastell",
        "schedule",
        "install",
        "--server",
        "web-1",
        "--repo",
        "offsite",
        "--backup-at",
        "daily",
        "--unit-dir",
        "/tmp/u",
        "--dry-run",
    ])
    .unwrap();
    assert_eq!(args.server.as_deref(), Some("web-1"));
    assert_eq!(args.backup_at.as_deref(), Some("daily"));
    assert!(args.dry_run);
    assert_eq!(args.dir.scope(), Scope::User);
    let args = parse(&["kastell", "schedule", "install", "--all", "--system"]).unwrap();
    assert!(args.all);
    assert_eq!(args.dir.scope(), Scope::System);
    for bad in [
        &[
            "kastell", "schedule", "install", "--all", "--server", "web-1",
        ][..],
        &["kastell", "schedule", "install", "--user", "--system"],
        &["kastell", "schedule", "install", "--prune-at", "daily"],
        &[
            "kastell",
            "schedule",
            "install",
            "--no-drill",
            "--drill-at",
            "daily",
        ],
    ] {
        assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
    }
}

#[test]
fn the_cli_reads_every_generated_command_with_names_after_the_double_dash() {
    use crate::surfaces::cli::repo::RepoCommand;
    let request = schedule::Request {
        target: Target::Server("web-1".into()),
        repo: Some("-r".into()),
        backup_at: schedule::DEFAULT_BACKUP_AT.into(),
        prune_at: Some(schedule::DEFAULT_PRUNE_AT.into()),
        drill_at: Some(schedule::DEFAULT_DRILL_AT.into()),
        scratch_drill_at: Some(schedule::DEFAULT_DRILL_AT.into()),
        rotate: Some(schedule::Rotation {
            keep: super::keep_rules("daily=7, weekly=4").unwrap(),
            at: schedule::DEFAULT_ROTATE_AT.into(),
        }),
    };
    let jobs = schedule::jobs(&request).unwrap();
    assert_eq!(jobs.len(), 5);
    for job in &jobs {
        let at = job.args.iter().position(|a| a == "--").unwrap();
        assert_eq!(at, job.args.len() - 2, "{:?}", job.args);
        let argv = std::iter::once("kastell".to_owned()).chain(job.args.iter().cloned());
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{:?}: {e}", job.args));
        match (job.kind, cli.command) {
            (JobKind::Backup, Command::Operation(call)) if call.op.title() == "backup create" => {
                assert_eq!(call.target.server.as_deref(), Some("web-1"));
                assert_eq!(call.op.0.args()["repo"], "-r");
                assert!(call.target.force);
            }
            (JobKind::Prune, Command::Repo(RepoCommand::Prune(args))) => {
                assert_eq!(args.name, "-r");
                assert!(args.apply && args.force);
            }
            (JobKind::Drill, Command::Operation(call)) if call.op.title() == "backup drill" => {
                assert_eq!(call.target.server.as_deref(), Some("web-1"));
                assert_eq!(call.op.0.args()["repo"], "-r");
            }
            (JobKind::Drill, Command::Operation(call)) if call.op.title() == "drill" => {
                assert_eq!(call.target.server.as_deref(), Some("web-1"));
                assert!(call.target.force);
            }
            (JobKind::Rotate, Command::Operation(call)) if call.op.title() == "snapshot rotate" => {
                assert_eq!(call.target.server.as_deref(), Some("web-1"));
                let args = call.op.0.args();
                assert_eq!(args["keepDaily"], 7);
                assert_eq!(args["keepWeekly"], 4);
                assert_eq!(args["apply"], true);
                assert!(call.target.force);
            }
            (kind, other) => panic!("{kind:?} parsed as {other:?}"),
        }
    }
}

#[test]
fn the_next_command_enables_every_timer() {
    let job = |stem: &str| Job {
        kind: JobKind::Backup,
        stem: stem.to_owned(),
        description: String::new(),
        args: Vec::new(),
        calendar: String::new(),
    };
    let jobs = [job("kastell-backup-web-1"), job("kastell-drill-web-1")];
    assert_eq!(
        enable_command(Scope::User, &jobs),
        "systemctl --user daemon-reload && systemctl --user enable --now kastell-backup-web-1.timer kastell-drill-web-1.timer"
    );
    assert!(
        enable_command(Scope::System, &jobs)
            .starts_with("systemctl daemon-reload && systemctl enable")
    );
}

#[test]
fn rotation_rules_are_read_or_refused_saying_why() {
    assert_eq!(
        super::keep_rules("last=3,monthly=12").unwrap(),
        [("--keep-last", 3), ("--keep-monthly", 12)]
    );
    for (bad, says) in [
        ("hourly=3", "unknown keep rule"),
        ("daily", "RULE=N"),
        ("daily=0", "1 to 1000"),
        ("daily=x", "1 to 1000"),
        ("daily=1,daily=2", "twice"),
        ("", "at least one"),
    ] {
        let err = super::keep_rules(bad).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
}
