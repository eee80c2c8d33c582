//! Rendering systemd unit files: the text of each service and timer, with
//! every value escaped by systemd's own rules.
//!
//! What the rules are (systemd.service(5) "Command lines",
//! systemd.syntax(7) "Quoting", systemd.unit(5) "Specifiers"):
//!
//! - `ExecStart=` splits on white space unless a word is quoted; inside
//!   double quotes C escapes apply, so `\` and `"` are escaped; `%` starts a
//!   specifier everywhere, so it is doubled; `$` starts a variable, so it is
//!   doubled too; a lone `;` separates commands and is written `\;`.
//! - The program (the first word) takes `$` literally, and systemd refuses
//!   one whose path holds a quote or a backslash.
//! - `Environment=` takes quoted `NAME=value` words with C escapes and
//!   specifiers (no variables).
//! - Plain values (`Description=`, `EnvironmentFile=`) take specifiers,
//!   and a trailing `\` would continue the line.
//!
//! No value may hold a control character (a newline would start a new
//! setting): every renderer refuses one instead of escaping it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};
use serde::Serialize;

/// The first line of every unit kastell writes. A file that does not start
/// with it was not written by kastell and is never overwritten or removed.
pub(crate) const MARKER: &str = "# Written by kastell schedule install";

/// The name of the template unit that reports a failed job.
pub(crate) const ALERT_TEMPLATE: &str = "kastell-alert@.service";

/// How long a job may run before systemd stops it (and the alert fires).
pub(crate) const JOB_TIMEOUT: &str = "12h";

/// How long the alert unit may take.
pub(crate) const ALERT_TIMEOUT: &str = "2min";

/// The random delay each timer adds, so a fleet of machines does not hit
/// the same repository at the same second.
pub(crate) const RANDOMIZED_DELAY: &str = "5min";

/// Where the units run: the user's own service manager or the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// `systemctl --user`: units in `~/.config/systemd/user`.
    User,
    /// `systemctl`: units in `/etc/systemd/system`.
    System,
}

impl Scope {
    /// `systemctl` or `systemctl --user`.
    pub(crate) fn systemctl(self) -> &'static str {
        match self {
            Self::User => "systemctl --user",
            Self::System => "systemctl",
        }
    }
}

/// What one scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobKind {
    /// `kastell backup create`.
    Backup,
    /// `kastell repo prune --apply`.
    Prune,
    /// `kastell backup drill`.
    Drill,
    /// `kastell snapshot rotate --apply`.
    Rotate,
}

/// One scheduled job: a service and the timer that starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Job {
    /// What it does.
    pub kind: JobKind,
    /// The unit name without `.service` / `.timer`.
    pub stem: String,
    /// One line for `Description=` and the listing.
    pub description: String,
    /// The arguments given to kastell.
    pub args: Vec<String>,
    /// The `OnCalendar=` expression.
    pub calendar: String,
}

impl Job {
    /// `<stem>.service`.
    pub(crate) fn service_name(&self) -> String {
        format!("{}.service", self.stem)
    }

    /// `<stem>.timer`.
    pub(crate) fn timer_name(&self) -> String {
        format!("{}.timer", self.stem)
    }
}

/// What every unit of one installation shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The absolute path of the kastell binary the units run.
    pub exe: PathBuf,
    /// The kastell directory, given to every unit as `KASTELL_DIR`.
    pub kastell_dir: PathBuf,
    /// The operator's environment file (tokens, the alert webhook).
    pub env_file: Option<PathBuf>,
    /// User or system units.
    pub scope: Scope,
    /// `User=` for system units (the kastell directory's owner), by uid.
    pub run_as: Option<u32>,
}

/// One rendered unit file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UnitFile {
    /// Its file name (`kastell-backup-web-1.service`).
    pub name: String,
    /// Its text.
    pub content: String,
}

/// One word of an `ExecStart=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExecWord {
    /// A literal argument, escaped so systemd passes it unchanged.
    Literal(String),
    /// A specifier systemd expands (`%i`), written as is.
    Specifier(&'static str),
}

/// The longest unit name systemd accepts (`UNIT_NAME_MAX` minus the NUL).
pub(crate) const UNIT_NAME_MAX: usize = 255;

/// Turns a server or repository name into a piece of a unit name that
/// needs no escaping anywhere (not even in `%i`): ASCII letters, digits
/// and `-` stay; every other byte becomes `_XX` (upper-case hex), so two
/// names never map to the same piece. Refuses an empty name.
pub(crate) fn name_piece(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::invalid_input(
            "an empty name cannot be part of a unit name",
        ));
    }
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "_{byte:02X}");
        }
    }
    Ok(out)
}

/// Refuses a unit stem whose alert unit name
/// (`kastell-alert@<stem>.service.service`) would be longer than systemd
/// allows.
pub(crate) fn check_stem(stem: &str) -> Result<()> {
    let alert = format!("kastell-alert@{stem}.service.service");
    if alert.len() > UNIT_NAME_MAX {
        return Err(Error::invalid_input(format!(
            "the unit name {stem}.service is too long for systemd ({} characters with its alert unit, at most {UNIT_NAME_MAX})",
            alert.len()
        ))
        .with_hint("Use a shorter repository or server name"));
    }
    Ok(())
}

/// Refuses `value` when it holds a control character (a newline would
/// start a new setting in the unit file). `what` names the value in the
/// error.
pub(crate) fn check_value(what: &str, value: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Error::invalid_input(format!(
            "{what} holds a control character ({:?}), which a systemd unit cannot carry",
            c
        ))
        .with_hint("Use a value without newlines, tabs or other control characters"));
    }
    Ok(())
}

/// One argument for `ExecStart=`: as is when it is made of characters
/// systemd treats literally, else double-quoted with `\`, `"` escaped and
/// `%`, `$` doubled; a lone `;` becomes `\;`. Refuses a control character.
pub(crate) fn exec_arg(arg: &str) -> Result<String> {
    check_value("a command argument", arg)?;
    if arg == ";" {
        return Ok("\\;".to_owned());
    }
    Ok(quoted(arg, true))
}

/// `text` as one word: bare when every character is literal to systemd,
/// else in double quotes with `\` and `"` escaped, `%` doubled and, when
/// `dollars`, `$` doubled.
fn quoted(text: &str, dollars: bool) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@=+,-".contains(c));
    if plain {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The program of an `ExecStart=` line: an absolute UTF-8 path, quoted
/// when it needs it, `%` doubled; `$` stays as is (systemd expands no
/// variable in the program, and does not undo `$$` there). Refuses a
/// relative path, one that is not UTF-8, and one holding a control
/// character, a quote or a backslash (which systemd refuses in a program's
/// name).
pub(crate) fn exec_program(path: &Path) -> Result<String> {
    let text = utf8_path("the kastell binary's path", path)?;
    check_value("the kastell binary's path", text)?;
    if !path.is_absolute() {
        return Err(Error::invalid_input(format!(
            "the kastell binary's path {text:?} is not absolute"
        )));
    }
    if text.contains(['"', '\'', '\\']) {
        return Err(Error::invalid_input(format!(
            "the kastell binary's path {text:?} holds a quote or a backslash, which systemd refuses in a program's name"
        ))
        .with_hint("Install kastell in a directory whose path has no quotes or backslashes"));
    }
    Ok(quoted(text, false))
}

/// A whole `ExecStart=` value: `program` then `words`.
pub(crate) fn exec_line(program: &Path, words: &[ExecWord]) -> Result<String> {
    let mut line = exec_program(program)?;
    for word in words {
        line.push(' ');
        match word {
            ExecWord::Literal(arg) => line.push_str(&exec_arg(arg)?),
            ExecWord::Specifier(spec) => line.push_str(spec),
        }
    }
    Ok(line)
}

/// One `Environment=` word: `"NAME=value"` with `\`, `"` escaped and `%`
/// doubled. Refuses a name that is not `[A-Za-z_][A-Za-z0-9_]*` and a
/// value with a control character.
pub(crate) fn environment(name: &str, value: &str) -> Result<String> {
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(Error::invalid_input(format!(
            "{name:?} is not an environment variable name"
        )));
    }
    check_value(name, value)?;
    let mut out = format!("\"{name}=");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// A plain value (`Description=`, `EnvironmentFile=`): `%` doubled.
/// Refuses a control character, and a trailing `\` or white space (which
/// systemd would take as a line continuation or strip).
pub(crate) fn plain(what: &str, value: &str) -> Result<String> {
    check_value(what, value)?;
    if value.ends_with('\\') || value.ends_with(char::is_whitespace) {
        return Err(Error::invalid_input(format!(
            "{what} {value:?} ends with a backslash or white space, which a systemd unit cannot carry"
        )));
    }
    Ok(value.replace('%', "%%"))
}

/// `path` as UTF-8 text. Refuses a path that is not valid UTF-8.
pub(crate) fn utf8_path<'a>(what: &str, path: &'a Path) -> Result<&'a str> {
    path.to_str().ok_or_else(|| {
        Error::invalid_input(format!(
            "{what} {} is not valid UTF-8, which a systemd unit cannot carry",
            path.display()
        ))
    })
}

/// The comment block at the top of every unit kastell writes.
fn header(out: &mut String, what: &str) {
    let _ = writeln!(out, "{MARKER}: {what}.");
    out.push_str("# `kastell schedule install` rewrites this file and `kastell schedule remove` deletes it.\n");
    out.push_str("# No secret is written here: tokens come from the EnvironmentFile, if any.\n");
}

/// The settings every service kastell writes shares: one-shot, the
/// kastell directory, the environment file, the user (system units).
fn service_common(out: &mut String, settings: &Settings) -> Result<()> {
    out.push_str("Type=oneshot\n");
    let dir = utf8_path("the kastell directory", &settings.kastell_dir)?;
    let _ = writeln!(
        out,
        "Environment={}",
        environment(crate::state::paths::KASTELL_DIR_VAR, dir)?
    );
    if let Some(file) = &settings.env_file {
        let text = utf8_path("the environment file", file)?;
        let _ = writeln!(
            out,
            "EnvironmentFile={}",
            plain("the environment file", text)?
        );
    }
    if let (Scope::System, Some(uid)) = (settings.scope, settings.run_as) {
        let _ = writeln!(out, "User={uid}");
    }
    Ok(())
}

/// The service of `job`: runs kastell with the job's arguments, once, and
/// starts the alert unit when it fails. Refuses any value a unit cannot
/// carry (see the module documentation).
pub(crate) fn service(job: &Job, settings: &Settings) -> Result<UnitFile> {
    check_stem(&job.stem)?;
    let mut out = String::new();
    header(&mut out, &job.description);
    out.push_str("\n[Unit]\n");
    let _ = writeln!(
        out,
        "Description={}",
        plain("the description", &job.description)?
    );
    out.push_str("OnFailure=kastell-alert@%n.service\n");
    if settings.scope == Scope::System {
        out.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    }
    out.push_str("\n[Service]\n");
    service_common(&mut out, settings)?;
    let words: Vec<ExecWord> = job.args.iter().cloned().map(ExecWord::Literal).collect();
    let _ = writeln!(out, "ExecStart={}", exec_line(&settings.exe, &words)?);
    let _ = writeln!(out, "TimeoutStartSec={JOB_TIMEOUT}");
    Ok(UnitFile {
        name: job.service_name(),
        content: out,
    })
}

/// The timer of `job`: `OnCalendar=` its calendar, persistent (a run missed
/// while the machine was off happens at the next boot), a small random
/// delay. Refuses a calendar or description a unit cannot carry.
pub(crate) fn timer(job: &Job) -> Result<UnitFile> {
    check_stem(&job.stem)?;
    let mut out = String::new();
    header(&mut out, &format!("timer of {}", job.description));
    out.push_str("\n[Unit]\n");
    let _ = writeln!(
        out,
        "Description={} (timer)",
        plain("the description", &job.description)?
    );
    out.push_str("\n[Timer]\n");
    let _ = writeln!(out, "OnCalendar={}", plain("the calendar", &job.calendar)?);
    out.push_str("Persistent=true\n");
    let _ = writeln!(out, "RandomizedDelaySec={RANDOMIZED_DELAY}");
    let _ = writeln!(out, "Unit={}", job.service_name());
    out.push_str("\n[Install]\nWantedBy=timers.target\n");
    Ok(UnitFile {
        name: job.timer_name(),
        content: out,
    })
}

/// The template `kastell-alert@.service`: `kastell alert send --unit %i`
/// (with `--user` for user units), started by a failed job with the job's
/// unit name as its instance. Refuses what [`service`] refuses.
pub(crate) fn alert_template(settings: &Settings) -> Result<UnitFile> {
    let mut out = String::new();
    header(
        &mut out,
        "reports a failed kastell job to KASTELL_ALERT_WEBHOOK",
    );
    out.push_str("\n[Unit]\n");
    out.push_str("Description=kastell: report the failure of %i\n");
    if settings.scope == Scope::System {
        out.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    }
    out.push_str("\n[Service]\n");
    service_common(&mut out, settings)?;
    let mut words = vec![
        ExecWord::Literal("alert".to_owned()),
        ExecWord::Literal("send".to_owned()),
        ExecWord::Literal("--unit".to_owned()),
        ExecWord::Specifier("%i"),
    ];
    if settings.scope == Scope::User {
        words.push(ExecWord::Literal("--user".to_owned()));
    }
    let _ = writeln!(out, "ExecStart={}", exec_line(&settings.exe, &words)?);
    let _ = writeln!(out, "TimeoutStartSec={ALERT_TIMEOUT}");
    Ok(UnitFile {
        name: ALERT_TEMPLATE.to_owned(),
        content: out,
    })
}

/// Whether `content` is a unit kastell wrote (it starts with [`MARKER`]).
pub(crate) fn is_kastell_unit(content: &str) -> bool {
    content.starts_with(MARKER)
}

/// The value of the first `key=` setting in `content`, if any (for the
/// listing; no unescaping).
pub(crate) fn setting<'a>(content: &'a str, key: &str) -> Option<&'a str> {
    content.lines().find_map(|line| {
        line.trim_start()
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(exe: &str, dir: &str) -> Settings {
        Settings {
            exe: PathBuf::from(exe),
            kastell_dir: PathBuf::from(dir),
            env_file: None,
            scope: Scope::User,
            run_as: None,
        }
    }

    fn backup_job() -> Job {
        Job {
            kind: JobKind::Backup,
            stem: "kastell-backup-web-1".to_owned(),
            description: "kastell: back up web-1".to_owned(),
            args: ["backup", "create", "web-1", "--force"]
                .map(str::to_owned)
                .to_vec(),
            calendar: "*-*-* 03:00:00".to_owned(),
        }
    }

    #[test]
    fn plain_arguments_stay_plain_and_others_are_quoted() {
        assert_eq!(exec_arg("web-1").unwrap(), "web-1");
        assert_eq!(exec_arg("--repo").unwrap(), "--repo");
        assert_eq!(exec_arg("/a/b.c").unwrap(), "/a/b.c");
        assert_eq!(exec_arg("off site").unwrap(), "\"off site\"");
        assert_eq!(exec_arg("").unwrap(), "\"\"");
        assert_eq!(exec_arg("a\"b").unwrap(), "\"a\\\"b\"");
        assert_eq!(exec_arg("a\\b").unwrap(), "\"a\\\\b\"");
        assert_eq!(exec_arg("100%").unwrap(), "\"100%%\"");
        assert_eq!(exec_arg("$HOME").unwrap(), "\"$$HOME\"");
        assert_eq!(exec_arg("${X}y").unwrap(), "\"$${X}y\"");
        assert_eq!(exec_arg("'q'").unwrap(), "\"'q'\"");
        assert_eq!(exec_arg(";").unwrap(), "\\;");
        assert_eq!(exec_arg("a;b").unwrap(), "\"a;b\"");
    }

    #[test]
    fn newlines_and_control_characters_are_refused_everywhere() {
        for bad in ["a\nb", "a\rb", "tab\there", "nul\0", "esc\u{1b}[1m"] {
            assert!(exec_arg(bad).is_err(), "{bad:?}");
            assert!(environment("KASTELL_DIR", bad).is_err(), "{bad:?}");
            assert!(plain("x", bad).is_err(), "{bad:?}");
        }
        let mut job = backup_job();
        job.args.push("evil\nExecStartPost=/bin/rm".to_owned());
        let err = service(&job, &settings("/usr/bin/kastell", "/k")).unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
        let mut job = backup_job();
        job.calendar = "daily\nOnBootSec=1".to_owned();
        assert!(timer(&job).is_err());
        let mut job = backup_job();
        job.description = "x\n[Service]".to_owned();
        assert!(timer(&job).is_err());
        assert!(service(&backup_job(), &settings("/usr/bin/kastell", "/k\n")).is_err());
    }

    #[test]
    fn paths_with_spaces_are_quoted_and_percent_doubled() {
        let s = settings("/opt/my tools/kastell", "/home/op/state 100%");
        let unit = service(&backup_job(), &s).unwrap();
        assert!(
            unit.content
                .contains("ExecStart=\"/opt/my tools/kastell\" backup create web-1 --force\n"),
            "{}",
            unit.content
        );
        assert!(
            unit.content
                .contains("Environment=\"KASTELL_DIR=/home/op/state 100%%\"\n"),
            "{}",
            unit.content
        );
    }

    #[test]
    fn the_program_must_be_absolute_and_free_of_quotes() {
        assert!(exec_program(Path::new("kastell")).is_err());
        for bad in [
            "/opt/\"x\"/kastell",
            "/opt/it's/kastell",
            "/opt/a\\b/kastell",
            "/opt/a\nb",
        ] {
            assert!(exec_program(Path::new(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            exec_program(Path::new("/opt/$x 100%/kastell")).unwrap(),
            "\"/opt/$x 100%%/kastell\""
        );
        assert_eq!(
            exec_program(Path::new("/usr/bin/kastell")).unwrap(),
            "/usr/bin/kastell"
        );
    }

    #[test]
    fn environment_names_are_checked() {
        assert_eq!(
            environment("KASTELL_DIR", "/a \"b\"").unwrap(),
            "\"KASTELL_DIR=/a \\\"b\\\"\""
        );
        assert!(environment("1X", "v").is_err());
        assert!(environment("A B", "v").is_err());
        assert!(environment("", "v").is_err());
    }

    #[test]
    fn plain_values_refuse_trailing_backslashes() {
        assert_eq!(
            plain("p", "/etc/kastell 50%.env").unwrap(),
            "/etc/kastell 50%%.env"
        );
        assert!(plain("p", "/etc/x\\").is_err());
        assert!(plain("p", "/etc/x ").is_err());
    }

    #[test]
    fn name_pieces_are_injective_and_need_no_escaping() {
        assert_eq!(name_piece("web-1").unwrap(), "web-1");
        assert_eq!(name_piece("Off site").unwrap(), "Off_20site");
        assert_eq!(name_piece("a_b").unwrap(), "a_5Fb");
        assert_eq!(name_piece("a.b").unwrap(), "a_2Eb");
        assert_ne!(name_piece("a b").unwrap(), name_piece("a_20b").unwrap());
        assert_eq!(name_piece("ü").unwrap(), "_C3_BC");
        assert!(name_piece("").is_err());
        assert!(check_stem(&"x".repeat(300)).is_err());
        assert!(check_stem("kastell-backup-web-1").is_ok());
    }

    #[test]
    fn a_service_runs_kastell_once_and_alerts_on_failure() {
        let mut s = settings("/usr/bin/kastell", "/home/op/.kastell");
        s.env_file = Some(PathBuf::from("/home/op/.kastell/schedule.env"));
        let unit = service(&backup_job(), &s).unwrap();
        assert_eq!(unit.name, "kastell-backup-web-1.service");
        let text = &unit.content;
        assert!(is_kastell_unit(text));
        for line in [
            "Type=oneshot",
            "OnFailure=kastell-alert@%n.service",
            "Environment=\"KASTELL_DIR=/home/op/.kastell\"",
            "EnvironmentFile=/home/op/.kastell/schedule.env",
            "ExecStart=/usr/bin/kastell backup create web-1 --force",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(!text.contains("User="), "user units run as the user");
        assert!(
            !text.contains("network-online"),
            "user managers have no such target"
        );
        assert_eq!(
            setting(text, "ExecStart"),
            Some("/usr/bin/kastell backup create web-1 --force")
        );

        s.scope = Scope::System;
        s.run_as = Some(1000);
        let text = service(&backup_job(), &s).unwrap().content;
        assert!(text.lines().any(|l| l == "User=1000"), "{text}");
        assert!(text.contains("After=network-online.target"));
    }

    #[test]
    fn a_timer_is_persistent_and_names_its_service() {
        let unit = timer(&backup_job()).unwrap();
        assert_eq!(unit.name, "kastell-backup-web-1.timer");
        for line in [
            "OnCalendar=*-*-* 03:00:00",
            "Persistent=true",
            "RandomizedDelaySec=5min",
            "Unit=kastell-backup-web-1.service",
            "WantedBy=timers.target",
        ] {
            assert!(
                unit.content.lines().any(|l| l == line),
                "{line}\n{}",
                unit.content
            );
        }
        assert_eq!(setting(&unit.content, "OnCalendar"), Some("*-*-* 03:00:00"));
    }

    #[test]
    fn the_alert_template_passes_the_failed_unit() {
        let mut s = settings("/usr/bin/kastell", "/k");
        let text = alert_template(&s).unwrap().content;
        assert!(
            text.lines()
                .any(|l| l == "ExecStart=/usr/bin/kastell alert send --unit %i --user"),
            "{text}"
        );
        assert!(
            !text.contains("OnFailure"),
            "an alert must not alert about itself"
        );
        s.scope = Scope::System;
        let text = alert_template(&s).unwrap().content;
        assert!(
            text.lines()
                .any(|l| l == "ExecStart=/usr/bin/kastell alert send --unit %i"),
            "{text}"
        );
    }

    #[test]
    fn foreign_files_are_told_apart() {
        assert!(!is_kastell_unit("[Unit]\nDescription=mine\n"));
        assert!(!is_kastell_unit(&format!("\n{MARKER}")));
        assert!(is_kastell_unit(&format!("{MARKER}: x.\n")));
    }
}
