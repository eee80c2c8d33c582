//! The first failure of a snapshot being written, shared by the threads
//! that write it: once one is recorded, the writer uploads nothing more
//! and writes no snapshot (the packs already uploaded stay unreferenced;
//! prune removes them).

use std::sync::{Arc, Mutex, PoisonError};

use kastell_core::Error;

/// The first failure seen while reading a snapshot's streams.
pub(crate) type FailureSlot = Arc<Mutex<Option<Error>>>;

/// Records `error` unless an earlier failure is already recorded.
pub(crate) fn record(slot: &FailureSlot, error: Error) {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert(error);
}

/// Takes the recorded failure, if any.
pub(crate) fn take(slot: &FailureSlot) -> Option<Error> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// A copy of the recorded failure, if any, leaving it recorded: its kind,
/// message, retryability, hint and advice.
pub(crate) fn copy(slot: &FailureSlot) -> Option<Error> {
    let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    slot.as_ref().map(|error| {
        let mut copy =
            Error::new(error.kind(), error.message()).set_retryable(error.is_retryable());
        if let Some(hint) = error.hint() {
            copy = copy.with_hint(hint);
        }
        if let Some(advice) = error.advice() {
            copy = copy.with_advice(advice);
        }
        copy
    })
}
