use chrono::TimeZone;

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn server(name: &str, tags: &[&str]) -> ServerRecord {
    let mut record = ServerRecord::new("manual-1", name, "203.0.113.10");
    record.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    record
}

fn config(json: &str, ceiling: Option<SafetyLevel>) -> SafetyConfig {
    SafetyConfig {
        file: Some(serde_json::from_str(json).unwrap()),
        path: None,
        ceiling,
    }
}

#[test]
fn levels_parse_order_and_admit_their_categories() {
    assert_eq!(
        SafetyLevel::parse(" Safe-Writes ").unwrap(),
        SafetyLevel::SafeWrites
    );
    let err = SafetyLevel::parse("yolo").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.hint().unwrap().contains("read-only, safe-writes"));
    assert!(SafetyLevel::ReadOnly < SafetyLevel::Destructive);
    let matrix = [
        (SafetyLevel::ReadOnly, [true, false, false, false]),
        (SafetyLevel::SafeWrites, [true, true, false, false]),
        (SafetyLevel::Disruptive, [true, true, true, false]),
        (SafetyLevel::Destructive, [true, true, true, true]),
    ];
    let categories = [
        Category::Read,
        Category::SafeWrite,
        Category::Disruptive,
        Category::Destructive,
    ];
    for (level, admitted) in matrix {
        for (category, want) in categories.iter().zip(admitted) {
            assert_eq!(level.admits(*category), want, "{level} {category:?}");
        }
    }
}

#[test]
fn windows_parse_and_refuse_what_they_cannot_read() {
    for good in [
        "Sat 02:00-04:00",
        "mon-fri 22:00-02:00",
        "Sat,Sun 01:00-05:00",
        "daily 03:00-03:30",
        "* 00:00-24:00",
        "Fri-Mon 23:00-01:00",
        "Sunday 10:00-11:00",
    ] {
        assert!(Window::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "Sat",
        "Caturday 02:00-04:00",
        "Sat 2-4",
        "Sat 25:00-26:00",
        "Sat 24:00-01:00",
        "Sat 02:60-03:00",
        "Sät 02:00-04:00",
        "Sat 02:00",
    ] {
        let err = Window::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.hint().unwrap().contains("HH:MM-HH:MM"), "{bad:?}");
    }
}

#[test]
fn a_window_contains_its_minutes_and_knows_when_it_next_opens() {
    // 2026-12-05 is a Saturday.
    let sat = Window::parse("Sat 02:00-04:00").unwrap();
    assert!(sat.contains(at(2026, 12, 5, 2, 0)));
    assert!(sat.contains(at(2026, 12, 5, 3, 59)));
    assert!(!sat.contains(at(2026, 12, 5, 4, 0)));
    assert!(!sat.contains(at(2026, 12, 4, 3, 0)));
    assert_eq!(
        sat.next_opening(at(2026, 12, 3, 13, 0)),
        Some(at(2026, 12, 5, 2, 0))
    );
    assert_eq!(
        sat.next_opening(at(2026, 12, 5, 5, 0)),
        Some(at(2026, 12, 12, 2, 0))
    );
    // Across midnight: Friday 22:00 to Saturday 02:00 belongs to Friday.
    let night = Window::parse("Fri 22:00-02:00").unwrap();
    assert!(night.contains(at(2026, 12, 4, 23, 0)));
    assert!(night.contains(at(2026, 12, 5, 1, 59)));
    assert!(!night.contains(at(2026, 12, 5, 22, 30)));
    let whole = Window::parse("Thu 00:00-24:00").unwrap();
    assert!(whole.contains(at(2026, 12, 3, 23, 59)));
    assert!(!whole.contains(at(2026, 12, 4, 0, 0)));
}

#[test]
fn a_servers_entry_beats_its_tags_and_the_lowest_tag_wins() {
    let cfg = config(
        r#"{"level":"read-only",
            "tags":{"prod":{"level":"safe-writes"},"staging":{"level":"destructive"}},
            "servers":{"db-1":{"level":"disruptive"}}}"#,
        None,
    );
    let mcp = Surface::Mcp;
    let a = cfg.allowance(mcp, Some(&server("db-1", &["prod"])));
    assert_eq!(
        (a.level, a.source.as_str()),
        (SafetyLevel::Disruptive, "server db-1 in safety.json")
    );
    let a = cfg.allowance(mcp, Some(&server("web-1", &["staging", "prod"])));
    assert_eq!(
        (a.level, a.source.as_str()),
        (SafetyLevel::SafeWrites, "tag prod in safety.json")
    );
    let a = cfg.allowance(mcp, Some(&server("lab-1", &["staging"])));
    assert_eq!(a.level, SafetyLevel::Destructive);
    let a = cfg.allowance(mcp, Some(&server("misc-1", &["unknown"])));
    assert_eq!(
        (a.level, a.source.as_str()),
        (SafetyLevel::ReadOnly, "safety.json level")
    );
    let servers = [server("lab-1", &["staging"]), server("web-1", &["prod"])];
    assert_eq!(cfg.highest(mcp, &servers), SafetyLevel::Destructive);
    assert_eq!(cfg.highest(mcp, &servers[1..]), SafetyLevel::SafeWrites);
    // The file's own level does not widen a fleet whose servers are lower.
    let low = config(
        r#"{"level":"destructive","servers":{"web-1":{"level":"read-only"}}}"#,
        None,
    );
    assert_eq!(low.highest(mcp, &servers[1..]), SafetyLevel::ReadOnly);
    assert_eq!(low.highest(mcp, &[]), SafetyLevel::Destructive);
}

#[test]
fn without_a_level_each_surface_keeps_its_default_and_the_variable_is_a_ceiling() {
    let cfg = config(r#"{"tags":{"staging":{"level":"destructive"}}}"#, None);
    let plain = server("web-1", &[]);
    assert_eq!(
        cfg.allowance(Surface::Mcp, Some(&plain)).level,
        SafetyLevel::SafeWrites
    );
    assert_eq!(
        cfg.allowance(Surface::Cli, Some(&plain)).level,
        SafetyLevel::Destructive
    );
    let capped = config(
        r#"{"tags":{"staging":{"level":"destructive"}}}"#,
        Some(SafetyLevel::ReadOnly),
    );
    let a = capped.allowance(Surface::Cli, Some(&server("lab-1", &["staging"])));
    assert_eq!(
        (a.level, a.source.as_str()),
        (SafetyLevel::ReadOnly, SAFETY_LEVEL_VAR)
    );
    // A ceiling above the file's level changes nothing.
    let high = config(r#"{"level":"safe-writes"}"#, Some(SafetyLevel::Destructive));
    assert_eq!(
        high.allowance(Surface::Mcp, None).level,
        SafetyLevel::SafeWrites
    );
    assert!(!SafetyConfig::default().configured());
    assert!(high.configured());
}

#[test]
fn refusals_name_the_level_its_source_and_the_fix() {
    let cfg = config(r#"{"tags":{"prod":{"level":"safe-writes"}}}"#, None);
    let a = cfg.allowance(Surface::Mcp, Some(&server("web-1", &["prod"])));
    let now = at(2026, 12, 3, 12, 0);
    assert!(
        a.admit("backup-create", Category::SafeWrite, Some("web-1"), now)
            .is_ok()
    );
    let err = a
        .admit("restart", Category::Disruptive, Some("web-1"), now)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        err.message(),
        "restart is disruptive work and needs safety level disruptive; the level on web-1 is safe-writes (tag prod in safety.json)"
    );
    assert!(err.hint().unwrap().contains("safety.json"));
}

#[test]
fn windows_gate_disruptive_and_destructive_work_only() {
    let cfg = config(
        r#"{"level":"destructive","tags":{"prod":{"windows":["Sat 02:00-04:00"]}}}"#,
        None,
    );
    let a = cfg.allowance(Surface::Mcp, Some(&server("web-1", &["prod"])));
    let thursday = at(2026, 12, 3, 12, 0);
    let saturday = at(2026, 12, 5, 3, 0);
    assert!(
        a.admit(
            "backup-create",
            Category::SafeWrite,
            Some("web-1"),
            thursday
        )
        .is_ok()
    );
    assert!(
        a.admit("backup-list", Category::Read, Some("web-1"), thursday)
            .is_ok()
    );
    for (action, category) in [
        ("update", Category::Disruptive),
        ("backup-restore", Category::Destructive),
    ] {
        let err = a
            .admit(action, category, Some("web-1"), thursday)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(
            err.message().contains(
                "only inside its maintenance window; closed now: tag prod in safety.json \
                 (Sat 02:00-04:00 UTC)"
            ),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("next opens at 2026-12-05 02:00 UTC"),
            "{}",
            err.message()
        );
        assert!(a.admit(action, category, Some("web-1"), saturday).is_ok());
    }
    // A server in two gated tags needs to be inside both; the next time
    // both are open is named.
    let two = config(
        r#"{"level":"destructive","tags":{"a":{"windows":["Sat 02:00-04:00"]},"b":{"windows":["Sat 03:00-05:00"]}}}"#,
        None,
    );
    let a = two.allowance(Surface::Cli, Some(&server("web-1", &["a", "b"])));
    let err = a
        .admit("update", Category::Disruptive, None, at(2026, 12, 5, 2, 30))
        .unwrap_err();
    assert!(
        err.message()
            .contains("(all 2 entries that apply must be open at once)")
            && err
                .message()
                .contains("closed now: tag b in safety.json (Sat 03:00-05:00 UTC)")
            && !err.message().contains("tag a in")
            && err
                .message()
                .contains("the next opens at 2026-12-05 03:00 UTC"),
        "{}",
        err.message()
    );
    assert!(
        a.admit("update", Category::Disruptive, None, at(2026, 12, 5, 3, 30))
            .is_ok()
    );
}

#[test]
fn any_window_of_an_entry_opens_it() {
    let cfg = config(
        r#"{"level":"destructive","tags":{"prod":{"windows":["Sat 02:00-04:00","Sun 02:00-04:00"]}}}"#,
        None,
    );
    let a = cfg.allowance(Surface::Cli, Some(&server("web-1", &["prod"])));
    for now in [at(2026, 12, 5, 3, 0), at(2026, 12, 6, 3, 0)] {
        assert!(
            a.admit("restart", Category::Disruptive, Some("web-1"), now)
                .is_ok(),
            "{now}"
        );
    }
    let err = a
        .admit(
            "restart",
            Category::Disruptive,
            Some("web-1"),
            at(2026, 12, 3, 12, 0),
        )
        .unwrap_err();
    assert!(
        err.message().contains(
            "(Sat 02:00-04:00, Sun 02:00-04:00 UTC); the next opens at 2026-12-05 02:00 UTC"
        ),
        "{}",
        err.message()
    );
}

#[test]
fn a_servers_own_entry_keeps_its_tags_windows() {
    let cfg = config(
        r#"{"level":"destructive",
            "windows":["daily 00:00-23:00"],
            "tags":{"prod":{"windows":["Sat 02:00-04:00"]}},
            "servers":{"web-1":{"level":"disruptive","windows":["Sat 03:00-06:00"]}}}"#,
        None,
    );
    let a = cfg.allowance(Surface::Cli, Some(&server("web-1", &["prod"])));
    // The server's own entry still wins for the level.
    assert_eq!(
        (a.level, a.source.as_str()),
        (SafetyLevel::Disruptive, "server web-1 in safety.json")
    );
    let entries: Vec<&str> = a.windows.iter().map(|e| e.entry.as_str()).collect();
    assert_eq!(
        entries,
        [
            "safety.json",
            "tag prod in safety.json",
            "server web-1 in safety.json"
        ]
    );
    // Thursday noon: the tag's window is closed, whatever the server says.
    let err = a
        .admit(
            "restart",
            Category::Disruptive,
            Some("web-1"),
            at(2026, 12, 3, 12, 0),
        )
        .unwrap_err();
    assert!(
        err.message()
            .contains("tag prod in safety.json (Sat 02:00-04:00 UTC)"),
        "{}",
        err.message()
    );
    // Saturday: only when the file's, the tag's and the server's windows
    // are all open (03:00-04:00).
    for (h, open) in [(2, false), (3, true), (4, false), (23, false)] {
        let now = at(2026, 12, 5, h, 30);
        assert_eq!(
            a.admit("restart", Category::Disruptive, Some("web-1"), now)
                .is_ok(),
            open,
            "{now}"
        );
    }
    let err = a
        .admit(
            "restart",
            Category::Disruptive,
            Some("web-1"),
            at(2026, 12, 5, 2, 30),
        )
        .unwrap_err();
    assert!(
        err.message()
            .contains("the next opens at 2026-12-05 03:00 UTC"),
        "{}",
        err.message()
    );
    // Entries that never overlap never open, and the error says so.
    let never = config(
        r#"{"tags":{"a":{"windows":["Mon 01:00-02:00"]},"b":{"windows":["Tue 01:00-02:00"]}}}"#,
        None,
    );
    let a = never.allowance(Surface::Cli, Some(&server("web-1", &["a", "b"])));
    let err = a
        .admit(
            "restart",
            Category::Disruptive,
            None,
            at(2026, 12, 3, 12, 0),
        )
        .unwrap_err();
    assert!(
        err.message().contains("never all open at once"),
        "{}",
        err.message()
    );
}

#[test]
fn a_malformed_file_names_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs::<&str, &str>([]);
    std::fs::write(
        dir.path().join(SAFETY_FILE),
        "{\n  \"level\": \"read-only\",\n  oops\n}",
    )
    .unwrap();
    let err = SafetyConfig::load(&env, Some(dir.path())).unwrap_err();
    let path = dir.path().join(SAFETY_FILE).display().to_string();
    assert!(
        err.message().starts_with(&format!("{path} is not valid: "))
            && err.message().ends_with("(line 3, column 3)"),
        "{err}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.starts_with(&format!("Fix {path} at line 3, column 3")),
        "{hint}"
    );
    assert!(!hint.contains("SAFE_MODE"), "{hint}");
}

#[test]
fn a_fifo_in_place_of_the_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SAFETY_FILE);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let env = Env::from_pairs::<&str, &str>([]);
    let err = SafetyConfig::load(&env, Some(dir.path())).unwrap_err();
    assert!(
        err.message()
            .contains(&format!("{} is a FIFO (named pipe)", path.display())),
        "{err}"
    );
}

#[test]
fn a_bad_file_or_variable_is_refused_with_where_and_how() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs::<&str, &str>([]);
    assert!(
        !SafetyConfig::load(&env, Some(dir.path()))
            .unwrap()
            .configured()
    );
    for bad in [
        "{",
        r#"{"level":"yolo"}"#,
        r#"{"levle":"read-only"}"#,
        r#"{"tags":{"prod":{"windows":["Caturday 1:00-2:00"]}}}"#,
    ] {
        std::fs::write(dir.path().join(SAFETY_FILE), bad).unwrap();
        let err = SafetyConfig::load(&env, Some(dir.path())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        assert!(err.message().contains("safety.json is not valid"), "{bad}");
    }
    std::fs::write(dir.path().join(SAFETY_FILE), r#"{"level":"read-only"}"#).unwrap();
    let cfg = SafetyConfig::load(&env, Some(dir.path())).unwrap();
    assert_eq!(
        cfg.allowance(Surface::Cli, None).level,
        SafetyLevel::ReadOnly
    );
    let bad_var = Env::from_pairs([(SAFETY_LEVEL_VAR, "everything")]);
    let err = SafetyConfig::load(&bad_var, None).unwrap_err();
    assert!(
        err.message()
            .starts_with("KASTELL_SAFETY_LEVEL: Unknown safety level")
    );
}
