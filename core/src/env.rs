//! Child-process hygiene: nothing kastell spawns inherits a credential.

use std::ffi::{OsStr, OsString};
use std::process::Command;

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
];

/// Whether an environment variable's name looks like it holds a secret
/// (case-insensitive: `HETZNER_TOKEN`, `db_password`, `AWS_SECRET_ACCESS_KEY`).
pub fn is_secret_name(name: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    SECRET_MARKERS.iter().any(|marker| upper.contains(marker))
}

/// A [`Command`] for `program` whose environment is this process's minus
/// every variable named like a secret. Use it for everything kastell spawns.
pub fn scrubbed_command(program: impl AsRef<OsStr>) -> Command {
    command_with_env(program, std::env::vars_os())
}

/// A [`Command`] for `program` whose environment is `vars` minus every
/// variable named like a secret.
pub fn command_with_env(
    program: impl AsRef<OsStr>,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    command.envs(vars.into_iter().filter(|(name, _)| !is_secret_name(name)));
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
}
