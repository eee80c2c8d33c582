//! Confirmation for destructive commands.
//!
//! With `--force` the command proceeds. In a terminal the user is asked a
//! y/N question (default No). Without a terminal and without `--force`
//! the command is refused, so scripts and agents never block on a prompt
//! and never destroy anything by accident.

use std::io::{BufRead, IsTerminal, Write};

use kastell_core::{Error, Result};

/// What the user decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// Go ahead.
    Proceed,
    /// The user said no (not an error: exit code 0).
    Declined,
}

/// Asks `question` unless `force` is set. Refuses with `InvalidInput`
/// (telling the user to pass `--force`) when stdin is not a terminal.
pub(crate) fn confirm(question: &str, force: bool) -> Result<Confirmation> {
    if force {
        return Ok(Confirmation::Proceed);
    }
    if !std::io::stdin().is_terminal() {
        return Err(non_interactive());
    }
    ask(
        question,
        &mut std::io::stdin().lock(),
        &mut std::io::stderr().lock(),
    )
}

fn non_interactive() -> Error {
    Error::invalid_input(
        "Refusing to continue without confirmation: not running in a terminal. Pass --force to proceed.",
    )
    .with_hint("Re-run with --force to confirm this operation non-interactively")
}

/// Writes `question [y/N] ` to `output` and reads one answer line from
/// `input`: `y` or `yes` (any case) proceed, anything else, including end
/// of input, declines. Refuses only on an I/O failure.
pub(crate) fn ask(
    question: &str,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<Confirmation> {
    write!(output, "{question} [y/N] ")
        .and_then(|()| output.flush())
        .map_err(|e| Error::io("writing the prompt", e))?;
    let mut answer = String::new();
    input
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer", e))?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    Ok(if yes {
        Confirmation::Proceed
    } else {
        Confirmation::Declined
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Confirmation {
        let mut out = Vec::new();
        let got = ask("Remove?", &mut text.as_bytes(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "Remove? [y/N] ");
        got
    }

    #[test]
    fn only_yes_proceeds() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \n"] {
            assert_eq!(answer(yes), Confirmation::Proceed, "{yes:?}");
        }
        for no in ["\n", "n\n", "no\n", "", "yess\n", "sure\n"] {
            assert_eq!(answer(no), Confirmation::Declined, "{no:?}");
        }
    }

    #[test]
    fn force_skips_the_question() {
        assert_eq!(confirm("Remove?", true).unwrap(), Confirmation::Proceed);
        assert!(non_interactive().message().contains("--force"));
    }
}
