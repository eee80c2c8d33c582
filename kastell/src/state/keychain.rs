//! The desktop keychain (the freedesktop Secret Service: GNOME Keyring,
//! KWallet) as a place for provider tokens, through libsecret's
//! `secret-tool`.
//!
//! It is there only when a login session's bus is (`DBUS_SESSION_BUS_ADDRESS`)
//! and `secret-tool` is installed in a system directory; a headless server,
//! a cron job or a systemd timer has neither, and uses the private file
//! ([`super::tokens`]). Entries are keyed as the original tool's were
//! (`service=kastell`, `username=<the provider's variable>`, such as
//! `HETZNER_TOKEN` or `HETZNER_TOKEN_CLIENT_B`), so a token it stored is
//! found. The token goes to `secret-tool` on stdin and comes back on its
//! stdout, never on a command line; the child gets only `PATH`, `LANG`
//! and the session's bus address. A keychain that does not answer within
//! [`ANSWER_WITHIN`] (locked, waiting for a password dialog nobody sees)
//! counts as failing, never as hanging kastell.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kastell_core::env::allowlisted_command;
use kastell_core::{Error, Result, Secret};

use crate::env::Env;

/// The bus address that says a login session (and its keychain) is there.
pub const SESSION_BUS_VAR: &str = "DBUS_SESSION_BUS_ADDRESS";

/// The `service` attribute of every kastell entry (the original's too).
const SERVICE: &str = "kastell";

/// The label prefix of the entries kastell stores: `kastell token:
/// <provider>/<account>`, which `list` reads back.
const LABEL_PREFIX: &str = "kastell token: ";

/// How long `secret-tool` may take before the keychain counts as failing.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Where `secret-tool` may be: the system directories only, never a
/// directory the caller's `PATH` adds.
const SYSTEM_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/local/bin"];

/// One entry kastell stored in the keychain, as `auth list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeychainEntry {
    /// The provider id.
    pub provider: String,
    /// The account name.
    pub account: String,
    /// The token's last four characters.
    pub ends_with: String,
}

/// The session's keychain, reached through `secret-tool`.
#[derive(Debug, Clone)]
pub struct Keychain {
    program: PathBuf,
    bus: String,
    runtime_dir: Option<String>,
}

impl Keychain {
    /// The keychain of the session `env` belongs to; `None` without a
    /// session bus or without `secret-tool` in a system directory.
    pub fn from_env(env: &Env) -> Option<Self> {
        let bus = env.get_nonempty(SESSION_BUS_VAR)?;
        let program = SYSTEM_DIRS
            .iter()
            .map(|dir| Path::new(dir).join("secret-tool"))
            .find(|path| path.is_file())?;
        Some(Self {
            program,
            bus,
            runtime_dir: env.get_nonempty("XDG_RUNTIME_DIR"),
        })
    }

    fn command(&self) -> Command {
        let mut command = allowlisted_command(&self.program);
        command.env(SESSION_BUS_VAR, &self.bus);
        if let Some(dir) = &self.runtime_dir {
            command.env("XDG_RUNTIME_DIR", dir);
        }
        command
    }

    /// The token stored under `var` (the provider's variable name);
    /// `None` when there is none. Refuses when the keychain fails or does
    /// not answer.
    pub fn get(&self, var: &str) -> Result<Option<Secret>> {
        let mut command = self.command();
        command.args(["lookup", "service", SERVICE, "username", var]);
        let out = run(command, None)?;
        // secret-tool lookup exits 1 with nothing on stdout when there is
        // no such entry.
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if token.is_empty() {
            return Ok(None);
        }
        Ok(Some(Secret::new(token)))
    }

    /// Stores `token` under `var` for `provider`'s `account`, replacing
    /// what was there. Refuses when the keychain fails or does not answer.
    pub fn set(&self, var: &str, provider: &str, account: &str, token: &Secret) -> Result<()> {
        let mut command = self.command();
        command.args([
            "store",
            &format!("--label={LABEL_PREFIX}{provider}/{account}"),
            "service",
            SERVICE,
            "username",
            var,
        ]);
        let out = run(command, Some(token))?;
        if !out.success {
            return Err(failed("storing the token", &out));
        }
        Ok(())
    }

    /// Removes what is stored under `var`; whether there was something.
    pub fn remove(&self, var: &str) -> Result<bool> {
        let had = self.get(var)?.is_some();
        if had {
            let mut command = self.command();
            command.args(["clear", "service", SERVICE, "username", var]);
            let out = run(command, None)?;
            if !out.success {
                return Err(failed("removing the token", &out));
            }
        }
        Ok(had)
    }

    /// The entries kastell stored (by their label), without the tokens.
    pub fn list(&self) -> Result<Vec<KeychainEntry>> {
        let mut command = self.command();
        command.args(["search", "--all", "service", SERVICE]);
        let out = run(command, None)?;
        Ok(parse_search(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// The entries in `secret-tool search` output whose label kastell wrote.
fn parse_search(text: &str) -> Vec<KeychainEntry> {
    let mut entries = Vec::new();
    let mut label: Option<&str> = None;
    for line in text.lines() {
        if line.starts_with('[') {
            label = None;
        } else if let Some(value) = line.strip_prefix("label = ") {
            label = Some(value);
        } else if let Some(secret) = line.strip_prefix("secret = ") {
            let Some(named) = label.and_then(|l| l.strip_prefix(LABEL_PREFIX)) else {
                continue;
            };
            if let Some((provider, account)) = named.split_once('/') {
                entries.push(KeychainEntry {
                    provider: provider.to_owned(),
                    account: account.to_owned(),
                    ends_with: super::tokens::last_four(secret),
                });
            }
        }
    }
    entries.sort_by(|a, b| (&a.provider, &a.account).cmp(&(&b.provider, &b.account)));
    entries
}

/// What a `secret-tool` run left.
struct Ran {
    success: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `command`, writing `input` to its stdin, for at most
/// [`ANSWER_WITHIN`].
fn run(mut command: Command, input: Option<&Secret>) -> Result<Ran> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| Error::io("starting secret-tool", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(token) = input {
            stdin
                .write_all(token.expose().as_bytes())
                .map_err(|e| Error::io("giving secret-tool the token", e))?;
        }
    }
    let status = wait(&mut child)?;
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)
            .map_err(|e| Error::io("reading secret-tool's answer", e))?;
    }
    if let Some(mut err) = child.stderr.take() {
        // Only its first line is ever shown, and secret-tool never puts a
        // secret there.
        let _ = err.read_to_string(&mut stderr);
    }
    Ok(Ran {
        success: status.success(),
        stdout,
        stderr,
    })
}

/// Waits for `child`, killing it after [`ANSWER_WITHIN`].
fn wait(child: &mut Child) -> Result<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("waiting for secret-tool", e))?
        {
            return Ok(status);
        }
        if start.elapsed() >= ANSWER_WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(
                kastell_core::ErrorKind::Timeout,
                format!(
                    "The keychain did not answer within {} s",
                    ANSWER_WITHIN.as_secs()
                ),
            )
            .with_hint(
                "Unlock the keychain (log in to the desktop session), or keep the token in the \
                 file: kastell auth set PROVIDER --store file",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn failed(doing: &str, out: &Ran) -> Error {
    let why = out
        .stderr
        .lines()
        .next()
        .unwrap_or("no reason given")
        .trim();
    Error::new(
        kastell_core::ErrorKind::Unavailable,
        format!("The keychain refused {doing}: {}", super::store::shown(why)),
    )
    .with_hint("Keep the token in the file instead: kastell auth set PROVIDER --store file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_session_bus_there_is_no_keychain() {
        let env = Env::from_pairs([("PATH", "/usr/bin")]);
        assert!(Keychain::from_env(&env).is_none());
        let env = Env::from_pairs([(SESSION_BUS_VAR, "")]);
        assert!(Keychain::from_env(&env).is_none());
    }

    #[test]
    fn a_search_lists_only_kastells_entries_and_never_their_tokens() {
        let text = "[/1]\nlabel = kastell token: hetzner/default\nsecret = hcloud-abcdefgh-1234\n\
                    created = 2026-12-07 04:35:26\n[/2]\nlabel = someone else\nsecret = other-9999\n\
                    [/3]\nlabel = kastell token: vultr/client-b\nsecret = vultr-token-xyz-5678\n";
        let entries = parse_search(text);
        assert_eq!(
            entries,
            [
                KeychainEntry {
                    provider: "hetzner".into(),
                    account: "default".into(),
                    ends_with: "1234".into()
                },
                KeychainEntry {
                    provider: "vultr".into(),
                    account: "client-b".into(),
                    ends_with: "5678".into()
                },
            ]
        );
        assert!(!format!("{entries:?}").contains("abcdefgh"));
    }
}
