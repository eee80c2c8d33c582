//! kastell's own wording for the advice errors carry
//! ([`kastell_core::Advice`]): the contract crates say what to do in
//! plain words that name no product; here that advice names kastell's
//! settings, flags and tools.

use kastell_core::{Advice, Error};

/// The hint kastell shows for `advice`.
pub(crate) fn wording(advice: Advice) -> &'static str {
    match advice {
        Advice::FreeLocalDisk => {
            "This machine's disk is full, or a quota or file-size limit was reached: free some \
             space (or move the kastell directory, KASTELL_DIR, to a larger disk) and try again"
        }
        Advice::WritableLocalDisk => {
            "This machine's disk is read-only here: point KASTELL_DIR at a writable directory and \
             try again"
        }
        Advice::CheckReachability => {
            "The server may still be booting; check it with `kastell doctor <server>` (or \
             server_info status over MCP)"
        }
        Advice::SlowDown => {
            "The provider is rate limiting requests and kastell's retries ran out: wait a few \
             minutes, or work on fewer servers at once (--concurrency), then try again"
        }
        Advice::WaitForOtherOperation => {
            "Another operation was still running on this server when kastell's retries ran out: \
             wait until it finishes (server_info status), then try again"
        }
        _ => "Try again; if it keeps failing, run `kastell doctor`",
    }
}

/// The hint to show for `err`: kastell's wording of its advice when it
/// carries one, else its own hint.
pub(crate) fn hint(err: &Error) -> Option<String> {
    match err.advice() {
        Some(advice) => Some(wording(advice).to_owned()),
        None => err.hint().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use kastell_core::ErrorKind;

    use super::*;

    #[test]
    fn advice_is_worded_for_kastell_and_a_later_hint_wins() {
        let full = Error::io(
            "writing the backup",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert!(!full.hint().unwrap_or_default().contains("KASTELL_DIR"));
        assert!(hint(&full).unwrap_or_default().contains("KASTELL_DIR"));
        let rewritten = full.with_hint("the staging disk is full");
        assert_eq!(
            hint(&rewritten).as_deref(),
            Some("the staging disk is full")
        );
        let plain = Error::new(ErrorKind::NotFound, "gone").with_hint("look elsewhere");
        assert_eq!(hint(&plain).as_deref(), Some("look elsewhere"));
    }
}
