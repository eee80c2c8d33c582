//! The threads behind a streaming write: workers that hash, deduplicate,
//! compress and encrypt chunks, and one packer that fills and uploads
//! packs and remembers each entry's chunk list.
//!
//! Memory stays bounded: the channel into the workers holds at most
//! [`QUEUE_PER_WORKER`] chunks per worker, as does the channel out of
//! them, so at most five chunks per worker are in flight (each at most
//! the repository's maximum chunk size, 8 MiB by default, 1 MiB on
//! average), plus the pack being filled.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};
use kastell_core::{Error, Result};
use rustic_core::Id;

use super::pack::{PackRecord, Packer};
use super::seal::{Sealer, sha256};
use crate::gate::{self, FailureSlot};

/// Chunks queued per worker, into the workers and out of them.
pub(crate) const QUEUE_PER_WORKER: usize = 2;

/// A chunk of entry `entry`, the `seq`th of it.
pub(crate) struct Job {
    pub entry: usize,
    pub seq: usize,
    pub data: Vec<u8>,
}

/// A chunk hashed, and sealed when the repository lacks it.
struct Hashed {
    entry: usize,
    seq: usize,
    id: [u8; 32],
    /// The sealed blob, its plain length and whether it was compressed;
    /// `None` when the repository (or another chunk of this write)
    /// already holds it.
    sealed: Option<(Vec<u8>, u32, bool)>,
}

/// What the packer collected: each entry's chunk ids in order, the packs
/// written and what they added.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub contents: HashMap<usize, Vec<Option<[u8; 32]>>>,
    pub packs: Vec<PackRecord>,
    /// Plain bytes of the new blobs.
    pub added: u64,
    /// Bytes the new packs hold.
    pub added_packed: u64,
    /// New blobs.
    pub blobs: u64,
}

/// The running threads of one write.
pub(crate) struct Pool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    packer: Option<JoinHandle<Result<Collected>>>,
    failure: FailureSlot,
}

impl Pool {
    /// Starts `workers` workers (at least one) sealing with `sealer` the
    /// chunks not in `known` (each chunk sealed is added to it), and a
    /// packer filling `packer`. The first failure of any thread goes to
    /// `failure`.
    pub(crate) fn start(
        workers: usize,
        sealer: Sealer,
        known: Arc<Mutex<HashSet<Id>>>,
        packer: Packer,
        failure: FailureSlot,
    ) -> Result<Self> {
        let workers = workers.max(1);
        let (jobs_tx, jobs_rx) = bounded::<Job>(QUEUE_PER_WORKER * workers);
        let (done_tx, done_rx) = bounded::<Hashed>(QUEUE_PER_WORKER * workers);
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers {
            let (jobs, done) = (jobs_rx.clone(), done_tx.clone());
            let (sealer, known, failure) = (sealer.clone(), Arc::clone(&known), failure.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("kastell-seal-{n}"))
                    .spawn(move || work(&jobs, &done, &sealer, &known, &failure))
                    .map_err(|e| Error::io("starting a repository worker", e))?,
            );
        }
        drop(done_tx);
        let slot = failure.clone();
        let packer = std::thread::Builder::new()
            .name("kastell-pack".into())
            .spawn(move || pack(&done_rx, packer, &slot))
            .map_err(|e| Error::io("starting the repository packer", e))?;
        Ok(Self {
            jobs: Some(jobs_tx),
            workers: handles,
            packer: Some(packer),
            failure,
        })
    }

    /// A sender of chunks to the workers.
    pub(crate) fn sender(&self) -> Option<Sender<Job>> {
        self.jobs.clone()
    }

    /// Waits for every chunk sent to be packed and the last pack
    /// uploaded. Every sender must be gone (or it waits for them).
    pub(crate) fn finish(mut self) -> Result<Collected> {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                gate::record(
                    &self.failure,
                    Error::unexpected("a repository worker panicked"),
                );
            }
        }
        let collected = match self.packer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(Error::unexpected("the repository packer panicked")),
        };
        match gate::take(&self.failure) {
            Some(error) => Err(error),
            None => collected,
        }
    }
}

impl Drop for Pool {
    /// A pool given up before [`Pool::finish`] (its write failed or was
    /// dropped) marks the write failed, so its threads only drain what is
    /// still queued and upload nothing more, and lets its sender go.
    fn drop(&mut self) {
        if self.packer.is_some() {
            gate::record(&self.failure, Error::unexpected("the write was given up"));
        }
        self.jobs = None;
    }
}

fn failed(slot: &FailureSlot) -> bool {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some()
}

/// A worker: hashes each chunk and seals the ones nobody holds yet. After
/// a failure it only drains its queue.
fn work(
    jobs: &Receiver<Job>,
    done: &Sender<Hashed>,
    sealer: &Sealer,
    known: &Mutex<HashSet<Id>>,
    failure: &FailureSlot,
) {
    for job in jobs {
        if failed(failure) {
            continue;
        }
        let id = sha256(&job.data);
        let fresh = known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Id::new(id));
        let sealed = if fresh {
            match seal(sealer, &job.data) {
                Ok(sealed) => Some(sealed),
                Err(error) => {
                    gate::record(failure, error);
                    continue;
                }
            }
        } else {
            None
        };
        let hashed = Hashed {
            entry: job.entry,
            seq: job.seq,
            id,
            sealed,
        };
        if done.send(hashed).is_err() {
            return;
        }
    }
}

fn seal(sealer: &Sealer, plain: &[u8]) -> Result<(Vec<u8>, u32, bool)> {
    let length = u32::try_from(plain.len()).map_err(|_| Error::unexpected("a chunk over 4 GiB"))?;
    let (body, compressed) = sealer.compress(plain)?;
    Ok((sealer.encrypt(&body)?, length, compressed))
}

/// The packer: records each chunk's id in its entry's list and packs the
/// sealed ones.
fn pack(done: &Receiver<Hashed>, mut packer: Packer, failure: &FailureSlot) -> Result<Collected> {
    let mut collected = Collected::default();
    for hashed in done {
        let list = collected.contents.entry(hashed.entry).or_default();
        if list.len() <= hashed.seq {
            list.resize(hashed.seq + 1, None);
        }
        list[hashed.seq] = Some(hashed.id);
        let Some((sealed, plain, compressed)) = hashed.sealed else {
            continue;
        };
        if failed(failure) {
            continue;
        }
        collected.added += u64::from(plain);
        collected.blobs += 1;
        if let Err(error) = packer.add(hashed.id, &sealed, compressed.then_some(plain)) {
            gate::record(failure, error);
        }
    }
    if failed(failure) {
        return Ok(collected);
    }
    let (packs, bytes) = packer.finish()?;
    collected.packs = packs;
    collected.added_packed = bytes;
    Ok(collected)
}
