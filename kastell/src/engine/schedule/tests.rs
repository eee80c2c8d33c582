use super::*;

fn request(target: Target, repo: Option<&str>) -> Request {
    Request {
        target,
        repo: repo.map(str::to_owned),
        backup_at: DEFAULT_BACKUP_AT.to_owned(),
        prune_at: repo.map(|_| DEFAULT_PRUNE_AT.to_owned()),
        drill_at: Some(DEFAULT_DRILL_AT.to_owned()),
        scratch_drill_at: None,
        rotate: None,
    }
}

#[test]
fn a_scratch_drill_is_scheduled_per_server_only_when_asked() {
    let mut req = request(Target::Fleet(vec!["web-1".into(), "web-2".into()]), None);
    let plain = jobs(&req).unwrap().len();
    req.scratch_drill_at = Some("Sat *-*-* 06:00:00".into());
    let all = jobs(&req).unwrap();
    assert_eq!(all.len(), plain + 2);
    let last = all.last().unwrap();
    assert_eq!(last.stem, "kastell-scratch-drill-web-2");
    assert_eq!(last.args, ["drill", "--scratch", "--force", "--", "web-2"]);
}

#[test]
fn a_rotation_job_rotates_one_server_or_the_fleet_with_its_rules_as_single_words() {
    let rotation = Rotation {
        keep: vec![("--keep-daily", 7), ("--keep-weekly", 4)],
        at: DEFAULT_ROTATE_AT.to_owned(),
    };
    let mut one = request(Target::Server("web-1".into()), None);
    one.rotate = Some(rotation.clone());
    let jobs = jobs(&one).unwrap();
    let job = jobs.iter().find(|j| j.kind == JobKind::Rotate).unwrap();
    assert_eq!(job.stem, "kastell-rotate-web-1");
    assert_eq!(
        job.args,
        [
            "snapshot",
            "rotate",
            "--keep-daily=7",
            "--keep-weekly=4",
            "--apply",
            "--force",
            "--",
            "web-1"
        ]
    );
    assert_eq!(job.calendar, DEFAULT_ROTATE_AT);
    let mut fleet = request(Target::Fleet(vec!["web-1".into(), "web-2".into()]), None);
    fleet.rotate = Some(rotation);
    let jobs = super::jobs(&fleet).unwrap();
    let job = jobs.iter().find(|j| j.kind == JobKind::Rotate).unwrap();
    assert_eq!(job.stem, "kastell-fleet-rotate");
    assert_eq!(job.args.last().map(String::as_str), Some("--all"));
}

fn settings() -> Settings {
    Settings {
        exe: PathBuf::from("/usr/bin/kastell"),
        kastell_dir: PathBuf::from("/home/op/.kastell"),
        env_file: None,
        scope: Scope::User,
        run_as: None,
    }
}

#[test]
fn one_server_with_a_repository_gets_three_jobs() {
    let jobs = jobs(&request(Target::Server("web-1".into()), Some("off site"))).unwrap();
    let stems: Vec<&str> = jobs.iter().map(|j| j.stem.as_str()).collect();
    assert_eq!(
        stems,
        [
            "kastell-backup-web-1",
            "kastell-prune-off_20site",
            "kastell-drill-web-1"
        ]
    );
    assert_eq!(
        jobs[0].args,
        [
            "backup",
            "create",
            "--force",
            "--repo=off site",
            "--",
            "web-1"
        ]
    );
    assert_eq!(
        jobs[1].args,
        ["repo", "prune", "--apply", "--force", "--", "off site"]
    );
    assert_eq!(
        jobs[2].args,
        ["backup", "drill", "--repo=off site", "--", "web-1"]
    );
    assert_eq!(jobs[1].calendar, DEFAULT_PRUNE_AT);
    assert_eq!(jobs[2].calendar, DEFAULT_DRILL_AT);
}

#[test]
fn the_fleet_backs_up_at_once_and_drills_each_server() {
    let fleet = Target::Fleet(vec!["web-1".into(), "db-1".into()]);
    let jobs = jobs(&request(fleet, None)).unwrap();
    let stems: Vec<&str> = jobs.iter().map(|j| j.stem.as_str()).collect();
    assert_eq!(
        stems,
        [
            "kastell-fleet-backup",
            "kastell-drill-web-1",
            "kastell-drill-db-1"
        ]
    );
    assert_eq!(jobs[0].args, ["backup", "create", "--all", "--force"]);
    let units = render(&jobs, &settings()).unwrap();
    assert_eq!(units.len(), 7);
    assert_eq!(units.last().unwrap().name, ALERT_TEMPLATE);
}

#[test]
fn names_the_store_refuses_are_refused_before_any_unit_is_rendered() {
    // `-web` would be read as options by `backup create -web --force`.
    for bad in ["-web", "--all", "Web", "a b"] {
        let err = jobs(&request(Target::Server(bad.into()), None)).unwrap_err();
        assert!(
            err.to_string().contains("Invalid server name"),
            "{bad}: {err}"
        );
        let fleet = Target::Fleet(vec!["web-1".into(), bad.into()]);
        assert!(jobs(&request(fleet, None)).is_err(), "{bad}");
    }
    for bad in ["", "..", ".hidden", "a/b"] {
        let err = jobs(&request(Target::Server("web-1".into()), Some(bad))).unwrap_err();
        assert!(
            err.to_string().contains("repository name"),
            "{bad:?}: {err}"
        );
    }
    // A repository name starting with '-' is one the registry accepts: it
    // is never a separate word after an option, and comes after `--`.
    let jobs = jobs(&request(Target::Server("web-1".into()), Some("-r"))).unwrap();
    assert_eq!(
        jobs[0].args,
        ["backup", "create", "--force", "--repo=-r", "--", "web-1"]
    );
    assert_eq!(
        jobs[1].args,
        ["repo", "prune", "--apply", "--force", "--", "-r"]
    );
}

#[test]
fn no_repository_no_prune_and_no_drill_when_asked() {
    let mut req = request(Target::Server("web-1".into()), None);
    req.drill_at = None;
    let jobs = jobs(&req).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::Backup);
}

#[test]
fn the_user_unit_dir_follows_xdg_then_home() {
    let env = Env::from_pairs([("XDG_CONFIG_HOME", "/x/config"), ("HOME", "/home/op")]);
    assert_eq!(
        default_unit_dir(Scope::User, &env).unwrap(),
        PathBuf::from("/x/config/systemd/user")
    );
    let env = Env::from_pairs([("XDG_CONFIG_HOME", "relative"), ("HOME", "/home/op")]);
    assert_eq!(
        default_unit_dir(Scope::User, &env).unwrap(),
        PathBuf::from("/home/op/.config/systemd/user")
    );
    assert!(default_unit_dir(Scope::User, &Env::from_pairs::<&str, &str>([])).is_err());
    assert_eq!(
        default_unit_dir(Scope::System, &Env::from_pairs::<&str, &str>([])).unwrap(),
        PathBuf::from(SYSTEM_UNIT_DIR)
    );
}

#[test]
fn env_files_must_be_private_and_only_names_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("kastell.env");
    std::fs::write(
        &file,
        "# comment\nKASTELL_ALERT_WEBHOOK=https://hooks.example/s3cret\n export HETZNER_TOKEN=x\n\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = check_env_file(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.hint().unwrap_or_default().contains("chmod 600"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(check_env_file(&file).unwrap(), file);
    assert_eq!(
        env_file_names(&file).unwrap(),
        ["KASTELL_ALERT_WEBHOOK", "HETZNER_TOKEN"]
    );
    assert!(check_env_file(&tmp.path().join("missing")).is_err());
    assert!(check_env_file(tmp.path()).is_err());
}

#[test]
fn foreign_units_are_never_replaced_or_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("units");
    let jobs = jobs(&request(Target::Server("web-1".into()), None)).unwrap();
    let units = render(&jobs, &settings()).unwrap();
    let written = write_units(&dir, &units).unwrap();
    assert_eq!(written.len(), 5);
    let mode = std::fs::metadata(&written[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Writing again replaces kastell's own files.
    write_units(&dir, &units).unwrap();

    let foreign = dir.join("kastell-backup-web-1.timer");
    std::fs::write(&foreign, "[Timer]\nOnCalendar=hourly\n").unwrap();
    let err = write_units(&dir, &units).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("not written by kastell"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "[Timer]\nOnCalendar=hourly\n"
    );

    let listed = scan(&dir).unwrap();
    let mine: Vec<&str> = listed
        .iter()
        .filter(|f| f.written_by_kastell)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        mine,
        [
            "kastell-alert@.service",
            "kastell-backup-web-1.service",
            "kastell-drill-web-1.service",
            "kastell-drill-web-1.timer"
        ]
    );

    // An enabled timer's link goes with it; the foreign file stays.
    let wants = dir.join("timers.target.wants");
    std::fs::create_dir(&wants).unwrap();
    std::os::unix::fs::symlink(
        dir.join("kastell-drill-web-1.timer"),
        wants.join("kastell-drill-web-1.timer"),
    )
    .unwrap();
    std::os::unix::fs::symlink(foreign.clone(), wants.join("kastell-backup-web-1.timer")).unwrap();
    let err = remove(&dir, &["kastell-backup-web-1.timer".into()], false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(
        dir.join("kastell-backup-web-1.service").exists(),
        "nothing removed"
    );
    let dry = remove(&dir, &[], true).unwrap();
    assert_eq!(dry.removed.len(), 4);
    assert!(dir.join("kastell-drill-web-1.timer").exists());
    let done = remove(&dir, &[], false).unwrap();
    assert_eq!(done, dry);
    assert_eq!(done.left_alone, std::slice::from_ref(&foreign));
    assert_eq!(done.links, [wants.join("kastell-drill-web-1.timer")]);
    assert!(foreign.exists());
    assert!(std::fs::symlink_metadata(wants.join("kastell-backup-web-1.timer")).is_ok());
    let left: Vec<String> = scan(&dir).unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(left, ["kastell-backup-web-1.timer"]);
}

#[test]
fn removing_the_last_job_takes_the_alert_template() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut req = request(Target::Server("web-1".into()), None);
    req.drill_at = None;
    let units = render(&jobs(&req).unwrap(), &settings()).unwrap();
    write_units(dir, &units).unwrap();
    let err = remove(dir, &["kastell-backup-db-1".into()], false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let done = remove(dir, &["kastell-backup-web-1".into()], false).unwrap();
    assert_eq!(done.removed.len(), 3, "{done:?}");
    assert!(scan(dir).unwrap().is_empty());
}
