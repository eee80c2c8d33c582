//! Child-process hygiene: nothing kastell spawns inherits a credential.
//! [`scrubbed_command`] passes this process's environment minus every
//! secret; [`allowlisted_command`] passes only `PATH` and `LANG=C`, for
//! programs that read what a server sent.

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// The `PATH` an allowlisted child gets: the system directories only.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Name fragments that mark an environment variable as a credential.
const SECRET_MARKERS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "AUTH_KEY",
    "AUTHKEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "SESSION_KEY",
    "WEBHOOK",
    "COOKIE",
    "DSN",
];

/// Name endings of variables that hold an address, which is a secret when
/// it carries credentials (`https://user:pass@host`, `?token=`).
const ADDRESS_SUFFIXES: &[&str] = &["_URL", "_URI", "_ENDPOINT"];

/// Query parameters that carry a credential in an address.
const CREDENTIAL_PARAMS: &[&str] = &[
    "token",
    "key",
    "secret",
    "sig",
    "signature",
    "password",
    "auth",
    "access_token",
];

/// Whether an environment variable's name looks like it holds a secret
/// (case-insensitive: `HETZNER_TOKEN`, `db_password`, `AWS_SECRET_ACCESS_KEY`).
pub fn is_secret_name(name: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    SECRET_MARKERS.iter().any(|marker| upper.contains(marker))
}

/// Whether an address carries a credential: a user or password before
/// the host (`https://user:pass@host/`) or a credential-like query
/// parameter (`?token=...`, `&sig=...`).
fn address_has_credentials(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if let Some((_, rest)) = lower.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return true;
        }
    }
    let Some((_, query)) = lower.split_once('?') else {
        return false;
    };
    query.split(['&', '#']).any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        CREDENTIAL_PARAMS.iter().any(|p| {
            name == *p
                || ["_", "-"]
                    .iter()
                    .any(|sep| name.ends_with(&format!("{sep}{p}")))
        })
    })
}

/// Whether the variable `name=value` holds a secret: its name looks like
/// one ([`is_secret_name`], which covers `KASTELL_ALERT_WEBHOOK`), or it is
/// an address (`*_URL`, `*_URI`, `*_ENDPOINT`) that carries credentials
/// (`DATABASE_URL=postgres://app:pw@db/app`).
pub fn is_secret_var(name: &OsStr, value: &OsStr) -> bool {
    if is_secret_name(name) {
        return true;
    }
    let upper = name.to_string_lossy().to_ascii_uppercase();
    ADDRESS_SUFFIXES.iter().any(|s| upper.ends_with(s))
        && address_has_credentials(&value.to_string_lossy())
}

/// A [`Command`] for `program` whose environment is this process's minus
/// every secret ([`is_secret_var`]). Use it for everything kastell spawns.
pub fn scrubbed_command(program: impl AsRef<OsStr>) -> Command {
    command_with_env(program, std::env::vars_os())
}

/// A [`Command`] for `program` whose environment is `vars` minus every
/// secret ([`is_secret_var`]).
pub fn command_with_env(
    program: impl AsRef<OsStr>,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    command.envs(
        vars.into_iter()
            .filter(|(name, value)| !is_secret_var(name, value)),
    );
    command
}

/// A [`Command`] for `program` whose environment holds nothing of this
/// process's: only `PATH` (the system directories, [`SYSTEM_PATH`]) and
/// `LANG=C`. For programs fed what a server sent (a drill's `tar`,
/// `psql`, `pg_restore`, validators); add what the program needs with
/// [`Command::env`].
pub fn allowlisted_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    command.env("PATH", SYSTEM_PATH).env("LANG", "C");
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_secret_names() {
        for name in [
            "HETZNER_TOKEN",
            "digitalocean_token",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "MY_APIKEY",
            "GITHUB_PRIVATE_KEY",
            "KASTELL_ALERT_WEBHOOK",
            "slack_webhook_url",
            "SENTRY_DSN",
        ] {
            assert!(is_secret_name(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "KASTELL_DIR", "LANG", "TERM"] {
            assert!(!is_secret_name(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn spawned_children_do_not_see_secrets() {
        let parent_env = vec![
            (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
            (OsString::from("HETZNER_TOKEN"), OsString::from("leak-1")),
            (OsString::from("db_password"), OsString::from("leak-2")),
            (OsString::from("KASTELL_DIR"), OsString::from("/tmp/k")),
        ];
        let out = command_with_env("/usr/bin/env", parent_env)
            .output()
            .unwrap();
        let seen = String::from_utf8(out.stdout).unwrap();
        assert!(seen.contains("KASTELL_DIR=/tmp/k"));
        assert!(seen.contains("PATH=/usr/bin:/bin"));
        assert!(!seen.contains("leak-1"), "{seen}");
        assert!(!seen.contains("leak-2"), "{seen}");
    }

    #[test]
    fn addresses_are_secret_only_when_they_carry_credentials() {
        let secret = |name: &str, value: &str| is_secret_var(OsStr::new(name), OsStr::new(value));
        assert!(secret("DATABASE_URL", "postgres://app:pw@db:5432/app"));
        assert!(secret("ALERTS_URL", "https://hooks.example/x?token=abc"));
        assert!(secret(
            "STORE_ENDPOINT",
            "https://s3.example/?X-Amz-Signature=1"
        ));
        assert!(secret(
            "KASTELL_ALERT_WEBHOOK",
            "https://hooks.example/plain"
        ));
        assert!(!secret("HOMEPAGE_URL", "https://example.com/docs?page=2"));
        assert!(!secret("KASTELL_DIR", "/tmp/k"));
    }

    #[test]
    fn the_alert_webhook_and_credentialed_addresses_are_not_inherited() {
        let parent_env = vec![
            (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
            (
                OsString::from("KASTELL_ALERT_WEBHOOK"),
                OsString::from("https://hooks.example/leak-3"),
            ),
            (
                OsString::from("DATABASE_URL"),
                OsString::from("postgres://a:leak-4@db/a"),
            ),
            (
                OsString::from("DOCS_URL"),
                OsString::from("https://docs.example/"),
            ),
        ];
        let out = command_with_env("/usr/bin/env", parent_env)
            .output()
            .unwrap();
        let seen = String::from_utf8(out.stdout).unwrap();
        assert!(seen.contains("DOCS_URL=https://docs.example/"), "{seen}");
        assert!(!seen.contains("leak-3"), "{seen}");
        assert!(!seen.contains("leak-4"), "{seen}");
    }

    #[test]
    fn allowlisted_children_see_only_path_and_lang() {
        let out = allowlisted_command("/usr/bin/env").output().unwrap();
        let mut seen: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        seen.sort();
        assert_eq!(seen, ["LANG=C".to_owned(), format!("PATH={SYSTEM_PATH}")]);
    }
}
