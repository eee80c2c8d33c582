//! `systemd-analyze`, the checker systemd ships: `calendar` proves a
//! calendar expression means something (and says when it next elapses),
//! `verify` loads unit files the way the service manager would.
//!
//! It runs in system mode on the files themselves: `--user` needs a
//! running user manager, which a container, a CI runner or an SSH session
//! often lacks, and the system mode parses a user unit's settings all the
//! same. When the tool is not installed the callers go on and say the check
//! was skipped.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kastell_core::{Error, Result};
use serde::Serialize;

/// The program this module runs (looked up on `PATH`).
pub(crate) const SYSTEMD_ANALYZE: &str = "systemd-analyze";

/// How long one `systemd-analyze` run may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished bounded run produced.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs `cmd` (stdin closed) for at most `timeout`, killing it after that.
/// `Ok(None)` when the program is not installed; an error when it cannot
/// be started otherwise, or overran `timeout`.
pub(crate) fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Option<Finished>> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("starting {program}"), e)),
    };
    let readers = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .map(|stream| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut stream) = stream {
                // A read error only shortens the text.
                let _ = stream.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::timeout(format!(
                    "{program} did not finish within {} s",
                    timeout.as_secs()
                )));
            }
            Err(e) => return Err(Error::io(format!("waiting for {program}"), e)),
        }
    };
    let [out, err] = readers.map(|reader| reader.join().unwrap_or_default());
    Ok(Some(Finished {
        status,
        stdout: out,
        stderr: err,
    }))
}

/// A calendar expression systemd accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Calendar {
    /// As given.
    pub spec: String,
    /// systemd's normalized form (`daily` is `*-*-* 00:00:00`).
    pub normalized: String,
    /// When it next elapses, as systemd prints it.
    pub next_elapse: String,
}

/// The characters a calendar expression may hold: what systemd.time(7)
/// uses (weekdays, dates, times, ranges, repetitions, time zones).
fn calendar_chars_ok(spec: &str) -> bool {
    spec.chars()
        .all(|c| c.is_ascii_alphanumeric() || " *-:.,/~_+".contains(c))
}

/// Refuses a calendar expression that is empty, starts with `-` or holds a
/// character no calendar expression uses (a newline above all), before
/// systemd is asked. `what` names the option in the error.
pub(crate) fn check_calendar_text(what: &str, spec: &str) -> Result<()> {
    let trimmed = spec.trim();
    if trimmed.is_empty() || trimmed != spec || spec.starts_with('-') || !calendar_chars_ok(spec) {
        return Err(bad_calendar(what, spec, "it is not a calendar expression"));
    }
    Ok(())
}

fn bad_calendar(what: &str, spec: &str, why: &str) -> Error {
    Error::invalid_input(format!(
        "{what} {}: {why}",
        crate::state::store::shown(spec)
    ))
    .with_hint(
        "Use a systemd calendar expression such as `daily`, `*-*-* 03:00:00` or \
         `Sun *-*-* 05:00:00` (see `man systemd.time`; check one with `systemd-analyze calendar`)",
    )
}

/// Checks `spec` with `systemd-analyze calendar`. `Ok(None)` when the tool
/// is not installed (the caller warns); refuses, naming `what`, an
/// expression systemd cannot parse or one that never elapses.
pub(crate) fn calendar(what: &str, spec: &str) -> Result<Option<Calendar>> {
    check_calendar_text(what, spec)?;
    let mut cmd = kastell_core::env::scrubbed_command(SYSTEMD_ANALYZE);
    cmd.arg("calendar").arg(spec);
    let Some(done) = run_bounded(cmd, TIMEOUT)? else {
        return Ok(None);
    };
    if !done.status.success() {
        let why = done
            .stderr
            .lines()
            .next()
            .unwrap_or("systemd-analyze refused it")
            .trim()
            .to_owned();
        return Err(bad_calendar(what, spec, &why));
    }
    let field = |name: &str| {
        done.stdout.lines().find_map(|line| {
            line.trim_start()
                .strip_prefix(name)
                .map(|rest| rest.trim().to_owned())
        })
    };
    let normalized = field("Normalized form:").unwrap_or_else(|| spec.to_owned());
    let next_elapse = field("Next elapse:").unwrap_or_default();
    if next_elapse == "never" {
        return Err(bad_calendar(what, spec, "it never elapses again"));
    }
    Ok(Some(Calendar {
        spec: spec.to_owned(),
        normalized,
        next_elapse,
    }))
}

/// Loads `files` with `systemd-analyze verify` (system mode, no man page
/// checks). `Ok(false)` when the tool is not installed (the caller warns);
/// `Ok(true)` when systemd found nothing to say about them. Refuses when it
/// failed or reported anything about one of `files`, quoting what it said.
pub(crate) fn verify(files: &[PathBuf]) -> Result<bool> {
    let mut cmd = kastell_core::env::scrubbed_command(SYSTEMD_ANALYZE);
    cmd.arg("verify").arg("--man=no").args(files);
    let Some(done) = run_bounded(cmd, TIMEOUT)? else {
        return Ok(false);
    };
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let about_ours: Vec<&str> = done
        .stderr
        .lines()
        .chain(done.stdout.lines())
        .filter(|line| names.iter().any(|name| line.contains(name.as_str())))
        .collect();
    if done.status.success() && about_ours.is_empty() {
        return Ok(true);
    }
    let said = if about_ours.is_empty() {
        done.stderr.trim().to_owned()
    } else {
        about_ours.join("; ")
    };
    let said: String = said.chars().take(2000).collect();
    Err(Error::invalid_state(format!(
        "systemd-analyze verify refused the units kastell rendered: {said}"
    ))
    .with_hint("Nothing was written. Report this as a kastell bug, with the output of --dry-run"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::schedule::unit::{self, Job, JobKind, Scope, Settings};
    use std::os::unix::fs::PermissionsExt;

    fn installed() -> bool {
        kastell_core::env::scrubbed_command(SYSTEMD_ANALYZE)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok()
    }

    #[test]
    fn calendar_text_is_screened_before_systemd_sees_it() {
        for bad in [
            "",
            " daily",
            "daily\n",
            "daily\nOnBootSec=1",
            "-1",
            "a;b",
            "$(x)",
            "%i",
        ] {
            assert!(check_calendar_text("--backup-at", bad).is_err(), "{bad:?}");
        }
        for good in [
            "daily",
            "*-*-* 03:00:00",
            "Sun *-*-* 05:00:00",
            "Mon..Fri 9:00 Europe/Berlin",
            "*:0/15",
        ] {
            check_calendar_text("--backup-at", good).unwrap();
        }
    }

    #[test]
    fn systemd_parses_calendars_and_refuses_nonsense() {
        if !installed() {
            eprintln!("skipped: {SYSTEMD_ANALYZE} is not installed");
            return;
        }
        let daily = calendar("--backup-at", "daily").unwrap().unwrap();
        assert_eq!(daily.normalized, "*-*-* 00:00:00");
        assert!(!daily.next_elapse.is_empty());
        let err = calendar("--backup-at", "bogus").unwrap_err();
        assert!(err.to_string().contains("--backup-at"), "{err}");
        assert!(err.hint().unwrap_or_default().contains("systemd.time"));
        let err = calendar("--drill-at", "2001-01-01").unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[test]
    fn rendered_units_pass_verify_even_with_awkward_paths() {
        if !installed() {
            eprintln!("skipped: {SYSTEMD_ANALYZE} is not installed");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        // A real program in a directory with a space, a dollar and a
        // percent sign: verify says "not executable" if the quoting is wrong.
        let bin_dir = tmp.path().join("my tools $HOME 100%");
        std::fs::create_dir(&bin_dir).unwrap();
        let exe = bin_dir.join("kastell");
        std::fs::copy("/bin/true", &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env_file = tmp.path().join("env file");
        std::fs::write(&env_file, "KASTELL_ALERT_WEBHOOK=http://127.0.0.1/\n").unwrap();
        let settings = Settings {
            exe,
            kastell_dir: tmp.path().join("state with space"),
            env_file: Some(env_file),
            scope: Scope::User,
            run_as: None,
        };
        let job = Job {
            kind: JobKind::Prune,
            stem: format!(
                "kastell-prune-{}",
                unit::name_piece("off site; $HOME").unwrap()
            ),
            description: "kastell: prune off site; $HOME 100%".to_owned(),
            args: [
                "repo",
                "prune",
                "off site; $HOME",
                ";",
                "--apply",
                "--force",
            ]
            .map(str::to_owned)
            .to_vec(),
            calendar: "*-*-* 04:30:00".to_owned(),
        };
        let units_dir = tmp.path().join("units");
        std::fs::create_dir(&units_dir).unwrap();
        let mut files = Vec::new();
        for rendered in [
            unit::service(&job, &settings).unwrap(),
            unit::timer(&job).unwrap(),
            unit::alert_template(&settings).unwrap(),
        ] {
            let path = units_dir.join(&rendered.name);
            std::fs::write(&path, &rendered.content).unwrap();
            files.push(path);
        }
        assert!(verify(&files).unwrap());

        // A broken program path is caught: verify is not a no-op.
        let broken = settings.clone();
        let broken = Settings {
            exe: tmp.path().join("missing/kastell"),
            ..broken
        };
        let rendered = unit::service(&job, &broken).unwrap();
        std::fs::write(&files[0], &rendered.content).unwrap();
        let err = verify(&files[..1]).unwrap_err();
        assert!(err.to_string().contains("not executable"), "{err}");
    }

    #[test]
    fn a_missing_program_is_none_and_a_slow_one_is_stopped() {
        let missing = Command::new("kastell-no-such-program-here");
        assert!(run_bounded(missing, TIMEOUT).unwrap().is_none());
        let mut slow = Command::new("sleep");
        slow.arg("5");
        let started = Instant::now();
        let err = run_bounded(slow, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4));
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo out; echo err >&2; exit 3"]);
        let done = run_bounded(echo, TIMEOUT).unwrap().unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout, "out\n");
        assert_eq!(done.stderr, "err\n");
    }
}
