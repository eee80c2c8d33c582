//! Turning rustic_core's errors into kastell's, and back for backends.
//!
//! rustic_core's own `Display` is a multi-line report with links, a request
//! to file a bug and, when `RUST_BACKTRACE` is set, a backtrace; it nests
//! that report again for every cause. kastell shows one line instead:
//! each level's message, joined, and its own hint.

use std::error::Error as StdError;

use kastell_core::{Error, ErrorKind};
use rustic_core::RusticError;

/// The longest message [`one_line`] returns, in bytes.
const MAX_MESSAGE: usize = 600;

/// What to do about a damaged repository.
pub(crate) const CORRUPT_HINT: &str = "The repository's data is damaged: run `kastell repo check \
     NAME --read-data` to find every damaged file, then restore from another copy (the local \
     backup or another repository) and push that backup again";

/// Wraps a kastell error from a backend so rustic_core can carry it; it is
/// found again by [`from_rustic`].
pub(crate) fn to_rustic(error: Error) -> Box<RusticError> {
    RusticError::with_source(
        rustic_core::ErrorKind::Backend,
        "the repository storage failed",
        error,
    )
}

/// The kastell error for `error`: the backend's own when one caused it,
/// else one of the right kind saying in one line what `doing` was and
/// what went wrong (never rustic's report or a backtrace).
pub(crate) fn from_rustic(doing: &str, error: &RusticError) -> Error {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(ours) = current.downcast_ref::<Error>() {
            let error = Error::new(ours.kind(), format!("{doing}: {}", ours.message()))
                .set_retryable(ours.is_retryable());
            return match ours.hint() {
                Some(hint) => error.with_hint(hint),
                None => error,
            };
        }
        source = current.source();
    }
    if error.is_incorrect_password() {
        return Error::new(
            ErrorKind::Unauthenticated,
            format!("{doing}: the repository password is wrong"),
        )
        .with_hint("Check the repository's password file; no key in the repository opens with it");
    }
    // The kinds as rustic_core words them ("related to `verification`" in
    // a nested report, "related to verification" in the log line).
    let lower = error.display_log().to_lowercase().replace('`', "");
    let corrupt = [
        "related to verification",
        "related to cryptographic operations",
        "hash mismatch",
        "decryption failed",
    ]
    .iter()
    .any(|sign| lower.contains(sign));
    let kind = if corrupt {
        ErrorKind::Corrupt
    } else if lower.contains("related to invalid user input")
        || lower.contains("related to missing user input")
    {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Unexpected
    };
    let error = Error::new(kind, format!("{doing}: {}", one_line(error)));
    if corrupt {
        error.with_hint(CORRUPT_HINT)
    } else {
        error
    }
}

/// `error` and its causes in one line: a rustic_core level by its message
/// (its context filled in), any other by its first line without the text
/// of its cause, each cause once. At most [`MAX_MESSAGE`] bytes.
pub(crate) fn one_line(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(level) = current {
        let source = level.source();
        let own = match as_rustic(level) {
            Some(rustic) => message_of(rustic),
            None => without_cause(&level.to_string(), source),
        };
        let own = own.lines().next().unwrap_or_default().trim().to_owned();
        if !own.is_empty() && !parts.iter().any(|seen| seen.contains(&own)) {
            parts.push(own);
        }
        current = source;
    }
    let mut line = parts.join(": ");
    if line.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    line
}

fn as_rustic<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a RusticError> {
    error
        .downcast_ref::<RusticError>()
        .or_else(|| error.downcast_ref::<Box<RusticError>>().map(|b| &**b))
}

/// A rustic_core error's own message, without its kind, code or cause.
fn message_of(error: &RusticError) -> String {
    let log = error.display_log();
    let head = log.split(" (kind: related to ").next().unwrap_or(&log);
    head.trim_start_matches("Error: ").trim().to_owned()
}

/// `text` without the text of `cause` it embeds (as `thiserror` messages
/// like "error checking pack {id} : {source}" do).
fn without_cause(text: &str, cause: Option<&(dyn StdError + 'static)>) -> String {
    let Some(cause) = cause else {
        return text.to_owned();
    };
    let cause = cause.to_string();
    match text.find(&cause) {
        Some(at) if !cause.is_empty() => text[..at]
            .trim_end_matches(|c: char| c == ':' || c.is_whitespace())
            .to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_rustic_errors_become_one_line_without_a_backtrace() {
        let inner = RusticError::new(
            rustic_core::ErrorKind::Cryptography,
            "Data decryption failed for pack {id}",
        )
        .attach_context("id", "0b1d2f");
        let outer = RusticError::with_source(
            rustic_core::ErrorKind::Backend,
            "reading the pack failed",
            inner,
        );
        let error = from_rustic("reading db.dump", &outer);
        let message = error.message();
        assert_eq!(
            message,
            "reading db.dump: reading the pack failed: Data decryption failed for pack 0b1d2f"
        );
        assert_eq!(error.kind(), ErrorKind::Corrupt);
        assert!(error.hint().unwrap().contains("kastell repo check"));
        // rustic's own report of the same error is many lines long.
        assert!(outer.to_string().lines().count() > 10);
    }
}
