//! A backend wrapper that refuses to write a snapshot once a stream of it
//! has failed.
//!
//! rustic_core's archiver logs an unreadable file and carries on, then
//! writes the snapshot without it. For a backup that would be a
//! half-written backup listed as complete, so kastell records the failure
//! while reading and this gate turns the snapshot's write into an error:
//! the packs already uploaded stay unreferenced (prune removes them) and
//! no snapshot appears.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use kastell_core::Error;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

use crate::error::to_rustic;

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

/// `inner`, except that writing a snapshot file fails while `failure`
/// holds an error.
pub(crate) struct SnapshotGate {
    pub(crate) inner: Arc<dyn WriteBackend>,
    pub(crate) failure: FailureSlot,
}

impl ReadBackend for SnapshotGate {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }
}

impl WriteBackend for SnapshotGate {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        if tpe == FileType::Snapshot {
            let failed = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(error) = failed.as_ref() {
                return Err(to_rustic(Error::new(error.kind(), error.message())));
            }
        }
        self.inner.write_bytes(tpe, id, cacheable, content)
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}
