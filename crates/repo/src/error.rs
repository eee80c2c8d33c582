//! Turning rustic_core's errors into kastell's, and back for backends.

use kastell_core::{Error, ErrorKind};
use rustic_core::RusticError;

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
/// else one of the right kind saying what `doing` was.
pub(crate) fn from_rustic(doing: &str, error: &RusticError) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
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
    let text = error.display_log();
    let lower = text.to_lowercase();
    let kind =
        if lower.contains("related to verification") || lower.contains("related to cryptography") {
            ErrorKind::Corrupt
        } else if lower.contains("related to input") || lower.contains("related to missing input") {
            ErrorKind::InvalidInput
        } else {
            ErrorKind::Unexpected
        };
    Error::new(
        kind,
        format!("{doing}: {}", text.trim_start_matches("Error: ")),
    )
}
