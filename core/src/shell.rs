//! Building remote shell commands safely.
//!
//! Every remote command that carries a value is built with
//! [`RemoteCommand::template`], which quotes each value for a POSIX shell.
//! Fixed scripts use [`RemoteCommand::fixed`], which accepts only `'static`
//! text, so a runtime string cannot reach the shell unquoted by accident.

use std::fmt;

use crate::error::{Error, Result};

/// Quotes `value` as one word for a POSIX shell (`sh`, `bash`, `dash`).
///
/// The result is wrapped in single quotes, with each embedded `'` written as
/// `'\''`, so no character (`;`, `$()`, backquotes, newlines, globs) is
/// interpreted.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        if ch == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(ch);
        }
    }
    out.push('\'');
    out
}

/// A command line for the remote shell.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteCommand(String);

impl RemoteCommand {
    /// A command with no runtime values.
    pub fn fixed(script: &'static str) -> Self {
        Self(script.to_owned())
    }

    /// Fills each `{}` in `template` with the next value, quoted.
    ///
    /// Refuses a template whose placeholder count differs from the number of
    /// values, and values containing a NUL byte (which no shell can carry).
    pub fn template(template: &'static str, values: &[&str]) -> Result<Self> {
        let pieces: Vec<&str> = template.split("{}").collect();
        if pieces.len() != values.len() + 1 {
            return Err(Error::unexpected(format!(
                "remote command template has {} placeholders but {} values were given",
                pieces.len() - 1,
                values.len()
            )));
        }
        if values.iter().any(|v| v.contains('\0')) {
            return Err(Error::invalid_input(
                "a value for a remote command contains a NUL byte",
            ));
        }
        let mut out = String::from(pieces[0]);
        for (value, piece) in values.iter().zip(&pieces[1..]) {
            out.push_str(&quote(value));
            out.push_str(piece);
        }
        Ok(Self(out))
    }

    /// The command line as sent to the remote shell.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `producer | consumer`, each run by its own `sh -c`, failing when
    /// either fails (a POSIX `sh` has no `pipefail`): the consumer's exit
    /// status when it is not 0, else the producer's. A producer ended by
    /// `SIGPIPE` (status 141) after a consumer that exited 0 is a success:
    /// the consumer had read all it needed.
    pub fn piped(producer: &RemoteCommand, consumer: &RemoteCommand) -> Self {
        // fd 3 carries the producer's status out of the command
        // substitution; fd 4 is the real stdout, where the consumer writes.
        let script = format!(
            "exec 4>&1; s=$( {{ {{ sh -c {} 3>&- 4>&-; echo $? >&3; }} | sh -c {} 3>&- >&4; }} 3>&1 ); \
             c=$?; exec 4>&-; s=${{s:-1}}; [ \"$c\" = 0 ] || exit \"$c\"; \
             [ \"$s\" = 141 ] && exit 0; exit \"$s\"",
            quote(producer.as_str()),
            quote(consumer.as_str())
        );
        Self(script)
    }
}

impl fmt::Display for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteCommand({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Hostile values that must reach a real shell as one literal word.
    pub(crate) const HOSTILE: &[&str] = &[
        "plain",
        "",
        "it's",
        "'",
        "''",
        "a;rm -rf /tmp/kastell-never",
        "$(touch /tmp/kastell-never)",
        "`touch /tmp/kastell-never`",
        "${HOME}",
        "line1\nline2",
        "tab\there",
        "\"double\"",
        "back\\slash",
        "glob*?[a]",
        "-n",
        "--help",
        "a | b && c || d > e < f &",
        "ünïcødé ✓",
    ];

    #[test]
    fn quoted_values_survive_a_real_shell_unchanged() {
        for value in HOSTILE {
            let cmd = RemoteCommand::template("printf '%s' {}", &[value]).unwrap();
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd.as_str())
                .output()
                .unwrap();
            assert!(out.status.success(), "{value:?}: {out:?}");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), *value);
        }
        assert!(!std::path::Path::new("/tmp/kastell-never").exists());
    }

    fn run(cmd: &RemoteCommand, stdin: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd.as_str())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn piped_commands_stream_and_fail_when_either_side_fails() {
        let upper = RemoteCommand::fixed("tr a-z A-Z");
        let ok = RemoteCommand::piped(&RemoteCommand::fixed("cat; printf ' it'\\''s'"), &upper);
        let out = run(&ok, b"hello");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"HELLO IT'S");

        let producer_fails =
            RemoteCommand::piped(&RemoteCommand::fixed("printf partial; exit 3"), &upper);
        let out = run(&producer_fails, b"");
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert_eq!(out.stdout, b"PARTIAL");

        let consumer_fails = RemoteCommand::piped(
            &RemoteCommand::fixed("cat"),
            &RemoteCommand::fixed("cat >/dev/null; echo nope >&2; exit 5"),
        );
        let out = run(&consumer_fails, b"data");
        assert_eq!(out.status.code(), Some(5), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "nope");

        // A consumer that stops reading early but succeeds: a success.
        let early = RemoteCommand::piped(
            &RemoteCommand::fixed("yes"),
            &RemoteCommand::fixed("head -c 3"),
        );
        let out = run(&early, b"");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"y\ny");

        // Hostile text inside either side stays one word for its shell.
        for value in HOSTILE {
            let producer = RemoteCommand::template("printf '%s' {}", &[value]).unwrap();
            let out = run(
                &RemoteCommand::piped(&producer, &RemoteCommand::fixed("cat")),
                b"",
            );
            assert!(out.status.success(), "{value:?}: {out:?}");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), *value);
        }
        assert!(!std::path::Path::new("/tmp/kastell-never").exists());
    }

    #[test]
    fn template_checks_placeholder_count_and_nul() {
        assert!(RemoteCommand::template("a {} b {}", &["x"]).is_err());
        assert!(RemoteCommand::template("a", &["x"]).is_err());
        assert!(RemoteCommand::template("a {}", &["x\0y"]).is_err());
        let cmd = RemoteCommand::template("tar -C {} -cf - {}", &["/", "etc/x y"]).unwrap();
        assert_eq!(cmd.as_str(), "tar -C '/' -cf - 'etc/x y'");
    }
}
