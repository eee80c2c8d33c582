//! The files an on-server backup puts on its server, rendered: the script,
//! its root-only environment file and password file, and either a systemd
//! service and timer or a cron line. No secret is ever in the script, a
//! unit or a command line: the repository password, the S3 key and the
//! ping URL live only in the two 0600 files the script reads.

use std::fmt::Write as _;

use kastell_core::types::PlatformRoot;
use kastell_core::{Error, RemoteCommand, Result, quote};
use kastell_repo::backend::S3Credentials;
use serde::Serialize;

use super::capture::CapturedArtifact;
use super::sftp::RCLONE_REPOSITORY;
use crate::engine::schedule::unit::{self, Job, JobKind};

/// The first line of every file kastell writes on a server for an
/// on-server backup (after the script's `#!`): a file without it is never
/// overwritten or removed.
pub(crate) const MARKER: &str = "# Written by kastell schedule install --on-server";

/// The stem of the systemd units (and the cron file's name).
pub(crate) const UNIT_STEM: &str = "kastell-onserver-backup";

/// The tag on every snapshot an on-server backup writes.
pub(crate) const ONSERVER_TAG: &str = "onserver";

/// The tag on the snapshot that closes a run whose every artifact was
/// stored: only such runs count as backups (freshness reads them).
pub(crate) const COMPLETE_TAG: &str = "run-complete";

/// The file the closing snapshot holds: which artifacts the run stored.
pub(crate) const RUN_FILE: &str = "kastell-run.json";

/// Where the files are on a server whose filesystem starts at `root`.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PlatformRoot,
}

impl Layout {
    /// The layout under `root` (the server's `/`, or a platform's root).
    pub(crate) fn new(root: PlatformRoot) -> Self {
        Self { root }
    }

    /// The root the layout is under.
    pub(crate) fn root(&self) -> &PlatformRoot {
        &self.root
    }

    /// The environment file (0600): repository, S3 key, ping URL.
    pub(crate) fn env_file(&self) -> String {
        self.root.join("/etc/kastell/onserver/env")
    }

    /// The repository password (0600).
    pub(crate) fn password_file(&self) -> String {
        self.root.join("/etc/kastell/onserver/password")
    }

    /// The server's own SSH key for an SFTP repository (0600, made on the
    /// server; its public half beside it, `.pub`).
    pub(crate) fn ssh_key(&self) -> String {
        self.root.join("/etc/kastell/onserver/id_ed25519")
    }

    /// The storage host's pinned key for an SFTP repository.
    pub(crate) fn known_hosts(&self) -> String {
        self.root.join("/etc/kastell/onserver/known_hosts")
    }

    /// The script (0700).
    pub(crate) fn script(&self) -> String {
        self.root.join("/usr/local/lib/kastell/onserver-backup")
    }

    /// Where the script records its last run (`TIME STATUS RUN`).
    pub(crate) fn state_dir(&self) -> String {
        self.root.join("/var/lib/kastell/onserver")
    }

    /// The last run's record.
    pub(crate) fn last_run(&self) -> String {
        self.root.join("/var/lib/kastell/onserver/last")
    }

    /// restic's cache.
    fn cache_dir(&self) -> String {
        self.root.join("/var/cache/kastell/restic")
    }

    /// The systemd service.
    pub(crate) fn service(&self) -> String {
        self.root
            .join(&format!("/etc/systemd/system/{UNIT_STEM}.service"))
    }

    /// The systemd timer.
    pub(crate) fn timer(&self) -> String {
        self.root
            .join(&format!("/etc/systemd/system/{UNIT_STEM}.timer"))
    }

    /// The cron file (hosts without systemd).
    pub(crate) fn cron(&self) -> String {
        self.root.join(&format!("/etc/cron.d/{UNIT_STEM}"))
    }

    /// Every file an installation may have written, for removal.
    pub(crate) fn every_file(&self) -> Vec<String> {
        vec![
            self.timer(),
            self.service(),
            self.cron(),
            self.script(),
            // The password file before the environment file: it counts as
            // kastell's only while the marked environment file names it.
            self.password_file(),
            self.env_file(),
            self.known_hosts(),
            self.last_run(),
        ]
    }
}

/// How the server starts the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Starter {
    /// A systemd service and timer.
    Systemd,
    /// A line in `/etc/cron.d` (no systemd on the host).
    Cron,
}

/// Where a server's restic writes, and with which login of its own (no
/// `Debug`: it may hold a key).
pub(crate) enum Target<'a> {
    /// An S3 repository (`s3:https://host/bucket/prefix`) with the
    /// server's own key.
    S3 {
        /// The server's own repository.
        repository: &'a str,
        /// The server's own S3 key.
        keys: &'a S3Credentials,
    },
    /// Its directory on an SSH host, through the append-only rclone REST
    /// server the server's own key is forced into (see
    /// [`super::sftp`]). Nothing here is secret: the key stays in its
    /// file on the server.
    Rclone {
        /// The `ssh` command restic runs as its rclone program.
        program: &'a str,
        /// The known_hosts file pinning the storage host (its text).
        known_hosts: &'a str,
    },
}

impl Target<'_> {
    /// `restic backup` of its standard input as `name`, for `server`,
    /// tagged `tags` and with the run's tag (the rclone program given for
    /// SFTP).
    fn backup(&self, name: &str, server: &str, tags: &str) -> Result<RemoteCommand> {
        match self {
            Target::S3 { .. } => RemoteCommand::template(
                "restic backup --quiet --stdin --stdin-filename {} --host {} --tag {} --tag \"run:$KASTELL_RUN\"",
                &[name, server, tags],
            ),
            Target::Rclone { program, .. } => RemoteCommand::template(
                "restic -o {} backup --quiet --stdin --stdin-filename {} --host {} --tag {} --tag \"run:$KASTELL_RUN\"",
                &[&format!("rclone.program={program}"), name, server, tags],
            ),
        }
    }
}

/// What an on-server backup of one server needs (no `Debug`: it holds
/// the password).
pub(crate) struct Setup<'a> {
    /// The server's name (restic's `--host`).
    pub server: &'a str,
    /// Where it writes, with which login.
    pub target: Target<'a>,
    /// The server's repository password.
    pub password: &'a str,
    /// The healthchecks-style URL pinged at start, success and failure.
    pub ping_url: Option<&'a str>,
    /// When it runs (systemd calendar).
    pub calendar: &'a str,
    /// The platform's artifacts and their commands.
    pub artifacts: &'a [CapturedArtifact],
    /// How the server starts it.
    pub starter: Starter,
}

/// One file to write on the server. Its `Debug` and serialised form
/// never hold its text (a secret file's is [`ServerFile::shown`]).
#[derive(Clone, Serialize)]
pub(crate) struct ServerFile {
    /// Its absolute path on the server.
    pub path: String,
    /// Its mode.
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    /// Its text.
    #[serde(skip)]
    pub content: String,
    /// Whether it holds secrets (its text is never shown).
    pub secret: bool,
}

impl std::fmt::Debug for ServerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

impl ServerFile {
    /// What a dry run shows: the text, or for a secret file the names of
    /// the variables it sets and never a value.
    pub(crate) fn shown(&self) -> String {
        if !self.secret {
            return self.content.clone();
        }
        let names: Vec<&str> = self
            .content
            .lines()
            .filter_map(|l| l.split_once('=').map(|(name, _)| name))
            .filter(|n| !n.starts_with('#'))
            .collect();
        if names.is_empty() {
            "(secret: hidden)\n".to_owned()
        } else {
            format!("(secret: sets {}; values hidden)\n", names.join(", "))
        }
    }
}

/// Refuses a ping URL that is not `http(s)://...` or holds whitespace,
/// a control character or a quote.
pub(crate) fn check_ping_url(url: &str) -> Result<()> {
    let scheme = url.starts_with("https://") || url.starts_with("http://");
    let clean = !url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
    if !scheme || !clean || url.len() > 2048 {
        return Err(Error::invalid_input(
            "--ping-url must be an http(s) URL without spaces or quotes",
        )
        .with_hint("Give the check's ping URL, such as https://hc-ping.com/<uuid>"));
    }
    Ok(())
}

/// The cron schedule (`M H * * *`) of a daily systemd calendar
/// (`*-*-* HH:MM[:SS]`). Refuses any other calendar: a host without
/// systemd takes only a daily time.
pub(crate) fn cron_schedule(calendar: &str) -> Result<String> {
    let refuse = || {
        Error::invalid_input(format!(
            "the host has no systemd, and cron takes only a daily time, not {calendar:?}"
        ))
        .with_hint("Give --backup-at as \"*-*-* HH:MM\" (for example \"*-*-* 03:00\")")
    };
    let time = calendar.trim().strip_prefix("*-*-* ").ok_or_else(refuse)?;
    let mut parts = time.split(':');
    let number = |p: Option<&str>, max: u32| {
        p.filter(|t| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|n| *n <= max)
    };
    let hour = number(parts.next(), 23).ok_or_else(refuse)?;
    let minute = number(parts.next(), 59).ok_or_else(refuse)?;
    match parts.next() {
        None | Some("00") => {}
        Some(_) => return Err(refuse()),
    }
    if parts.next().is_some() {
        return Err(refuse());
    }
    Ok(format!("{minute} {hour} * * *"))
}

/// `name=value` lines a POSIX shell reads back as they are (values
/// quoted). Refuses a value with a line break or NUL.
fn assignments(pairs: &[(&str, &str)]) -> Result<String> {
    let mut out = String::new();
    for (name, value) in pairs {
        if value.contains(['\n', '\r', '\0']) {
            return Err(Error::invalid_input(format!(
                "{name} holds a line break, which the server's environment file cannot carry"
            )));
        }
        let _ = writeln!(out, "{name}={}", quote(value));
    }
    Ok(out)
}

/// The script's per-artifact line: the platform's own command piped into
/// `restic backup --stdin` (the pipe fails when either side does).
fn store_line(target: &Target<'_>, server: &str, artifact: &CapturedArtifact) -> Result<String> {
    let restic = target.backup(&artifact.name, server, &format!("kastell,{ONSERVER_TAG}"))?;
    let piped = RemoteCommand::piped(&artifact.command, &restic);
    Ok(format!(
        "store {} {}\n",
        quote(&artifact.name),
        quote(piped.as_str())
    ))
}

/// The script: reads its two private files, pings the start, stores each
/// artifact, closes the run with [`COMPLETE_TAG`], records the result and
/// pings success or failure. Refuses when restic is missing, naming the
/// package install command per distribution.
fn script(setup: &Setup<'_>, layout: &Layout) -> Result<String> {
    let mut out = String::from("#!/bin/sh\n");
    let _ = writeln!(out, "{MARKER}: backup of {}.", setup.server);
    out.push_str("# `kastell schedule install --on-server` rewrites this file and `kastell schedule remove --on-server` deletes it.\n");
    let _ = writeln!(
        out,
        "# No secret is written here: they are in {} and {} (mode 0600).",
        layout.env_file(),
        layout.password_file()
    );
    out.push_str("set -u\numask 077\nPATH=\"$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n");
    let _ = writeln!(out, "set -a\n. {}\nset +a", quote(&layout.env_file()));
    let _ = writeln!(out, "state={}", quote(&layout.state_dir()));
    let _ = writeln!(out, "server={}", quote(setup.server));
    out.push_str(
        r#"mkdir -p "$state" "$RESTIC_CACHE_DIR" || exit 1
KASTELL_RUN="$(date -u +%Y%m%dT%H%M%SZ)-$$"
export KASTELL_RUN
ping() {
  [ -n "${KASTELL_PING_URL:-}" ] || return 0
  command -v curl >/dev/null 2>&1 || return 0
  curl -fsS -m 10 --retry 2 -o /dev/null "$KASTELL_PING_URL$1" >/dev/null 2>&1 || true
}
finish() {
  printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$KASTELL_RUN" > "$state/last.tmp" && mv -f "$state/last.tmp" "$state/last"
}
fail() {
  echo "kastell on-server backup of $server: $1" >&2
  finish failed
  ping /fail
  exit 1
}
store() {
  sh -c "$2" || fail "storing $1 in the repository failed (status $?)"
}
ping /start
command -v restic >/dev/null 2>&1 || fail "restic is not installed: apt-get install -y restic (Debian, Ubuntu), dnf install -y restic (Fedora; EPEL on RHEL), apk add restic (Alpine), zypper install -y restic (openSUSE)"
"#,
    );
    if let Target::Rclone { .. } = setup.target {
        out.push_str("command -v ssh >/dev/null 2>&1 || fail \"ssh is not installed: apt-get install -y openssh-client\"\n");
    }
    for artifact in setup.artifacts {
        out.push_str(&store_line(&setup.target, setup.server, artifact)?);
    }
    let names: Vec<&str> = setup.artifacts.iter().map(|a| a.name.as_str()).collect();
    let run = serde_json::json!({ "server": setup.server, "artifacts": names }).to_string();
    let close = setup.target.backup(
        RUN_FILE,
        setup.server,
        &format!("kastell,{ONSERVER_TAG},{COMPLETE_TAG}"),
    )?;
    let _ = writeln!(
        out,
        "printf '%s\\n' {} | {} || fail \"closing the run failed\"",
        quote(&run),
        close.as_str()
    );
    out.push_str("finish ok\nping \"\"\n");
    Ok(out)
}

/// The systemd service running the script (no secret: the script reads
/// them).
fn service(setup: &Setup<'_>, layout: &Layout) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}: backup of {}.", setup.server);
    out.push_str("# No secret is written here: the script reads them from its 0600 files.\n");
    out.push_str("\n[Unit]\n");
    let _ = writeln!(
        out,
        "Description=kastell on-server backup of {}",
        unit::plain("the server name", setup.server)?
    );
    out.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    out.push_str("\n[Service]\nType=oneshot\nNice=10\nIOSchedulingClass=idle\n");
    let _ = writeln!(
        out,
        "ExecStart=/bin/sh {}",
        unit::exec_arg(&layout.script())?
    );
    Ok(out)
}

/// Every file of `setup` under `layout`, in the order they are written
/// (the private files first, the starter last).
pub(crate) fn render(setup: &Setup<'_>, layout: &Layout) -> Result<Vec<ServerFile>> {
    if setup.artifacts.is_empty() {
        return Err(Error::invalid_state("nothing to back up on this server"));
    }
    let mut env = match &setup.target {
        Target::S3 { repository, keys } => vec![
            ("RESTIC_REPOSITORY", *repository),
            ("AWS_ACCESS_KEY_ID", keys.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", keys.secret_access_key.as_str()),
        ],
        Target::Rclone { .. } => vec![("RESTIC_REPOSITORY", RCLONE_REPOSITORY)],
    };
    let password_file = layout.password_file();
    let cache = layout.cache_dir();
    env.push(("RESTIC_PASSWORD_FILE", &password_file));
    env.push(("RESTIC_CACHE_DIR", &cache));
    if let Some(url) = setup.ping_url {
        check_ping_url(url)?;
        env.push(("KASTELL_PING_URL", url));
    }
    if setup.password.is_empty() || setup.password.contains(['\n', '\r', '\0']) {
        return Err(Error::invalid_input(
            "the repository password must be one non-empty line",
        ));
    }
    let mut files = vec![
        ServerFile {
            path: layout.env_file(),
            mode: 0o600,
            // The marker makes it kastell's to replace and remove (a
            // comment to the shell that sources it).
            content: format!(
                "{MARKER}: settings of the backup of {}.\n{}",
                setup.server,
                assignments(&env)?
            ),
            secret: true,
        },
        ServerFile {
            path: password_file.clone(),
            mode: 0o600,
            content: format!("{}\n", setup.password),
            secret: true,
        },
    ];
    if let Target::Rclone { known_hosts, .. } = &setup.target {
        files.push(ServerFile {
            path: layout.known_hosts(),
            mode: 0o644,
            content: (*known_hosts).to_owned(),
            secret: false,
        });
    }
    files.extend([ServerFile {
        path: layout.script(),
        mode: 0o700,
        content: script(setup, layout)?,
        secret: false,
    }]);
    match setup.starter {
        Starter::Systemd => {
            files.push(ServerFile {
                path: layout.service(),
                mode: 0o644,
                content: service(setup, layout)?,
                secret: false,
            });
            let timer = unit::timer(&Job {
                kind: JobKind::Backup,
                stem: UNIT_STEM.to_owned(),
                description: format!("kastell on-server backup of {}", setup.server),
                args: Vec::new(),
                calendar: setup.calendar.to_owned(),
            })?;
            files.push(ServerFile {
                path: layout.timer(),
                mode: 0o644,
                content: timer.content,
                secret: false,
            });
        }
        Starter::Cron => {
            let schedule = cron_schedule(setup.calendar)?;
            files.push(ServerFile {
                path: layout.cron(),
                mode: 0o644,
                content: format!(
                    "{MARKER}: backup of {}.\n{schedule} root /bin/sh {}\n",
                    setup.server,
                    quote(&layout.script())
                ),
                secret: false,
            });
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
