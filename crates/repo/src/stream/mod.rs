//! Writing a snapshot from streams of unknown length, in one pass, on
//! every core.
//!
//! rustic_core's archiver needs each file's size before its content and
//! chunks a file on one thread; a backup streaming off a server knows its
//! size only at the end. This writer lays out restic's format itself,
//! from the repository's own key, polynomial, chunk and pack sizes and
//! compression level: each entry's bytes are cut where restic would cut
//! them (on the writing thread), and a pool of workers (one per core)
//! hashes each chunk, skips those the repository's index or this write
//! already holds, compresses and encrypts the rest; one packer thread
//! fills and uploads packs. At [`StreamWriter::finish`] the index, the
//! tree (with each entry's true size) and last the snapshot are written,
//! laid out as [`BackupRepository::store`] lays them out (same root,
//! host, tags and description), so later stores reuse what this one
//! wrote. An entry an earlier snapshot of the same host already holds
//! (the same name and content key) is taken from it without reading
//! anything ([`StreamWriter::reuse`], see `earlier`). A write that fails,
//! or is dropped before its end, leaves only packs no index or snapshot
//! names: no snapshot ever points at missing data.

mod chunker;
mod earlier;
mod pack;
mod pool;
mod seal;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use crossbeam_channel::Sender;
use kastell_core::{Error, ErrorKind, Result};
use rustic_core::repofile::{BlobType, IndexFile, SnapshotFile, SnapshotSummary, Tree};
use rustic_core::{
    DataId, FileType, Id, OpenStatus, Repository, SnapshotOptions, StringList, WriteBackend,
};

use crate::error::from_rustic;
use crate::gate::{self, FailureSlot};
use crate::repository::{
    BackupRepository, RepoSnapshot, SNAPSHOT_ROOT, check_name, file_node, snapshot_tags,
};
use crate::reuse;
use chunker::{ChunkSizes, Chunker};
use earlier::{Earlier, Taken, TreeBlob};
use pack::{PackRecord, Packer, pack_target, write_index};
use pool::{Job, Pool};
use seal::Sealer;

/// One entry of the snapshot being written.
#[derive(Debug, Clone)]
enum EntryState {
    /// Still being written.
    Open(String),
    /// Ended: its name, size, chunk count and content key.
    Done {
        name: String,
        size: u64,
        chunks: usize,
        key: Option<String>,
    },
    /// Taken from an earlier snapshot, unread.
    Reused {
        name: String,
        key: String,
        taken: Taken,
    },
}

impl EntryState {
    /// The entry's name.
    fn name(&self) -> &str {
        match self {
            Self::Open(name) | Self::Done { name, .. } | Self::Reused { name, .. } => name,
        }
    }
}

/// What the writer and its entries share.
#[derive(Debug)]
struct Shared {
    entries: Mutex<Vec<EntryState>>,
    failure: FailureSlot,
}

/// A snapshot being written from streams: [`Self::entry`] (or
/// [`Self::add`]) for each file, then [`Self::finish`] with its tags. Entries may be
/// written one after another or at the same time from several threads.
/// Dropping it before `finish` writes no snapshot.
pub struct StreamWriter {
    backend: Arc<dyn WriteBackend>,
    host: String,
    shared: Arc<Shared>,
    /// Until `finish` takes it.
    pool: Option<Pool>,
    sealer: Sealer,
    poly: u64,
    sizes: ChunkSizes,
    earlier: Earlier,
    tree_pack: u64,
    started: jiff::Timestamp,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl BackupRepository {
    /// Starts a snapshot of `host`, written from streams (see
    /// [`StreamWriter`]) with one worker per core. Reads the repository's
    /// index first. Refuses a repository whose chunker is not restic's.
    pub fn stream(&self, host: &str) -> Result<StreamWriter> {
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        StreamWriter::start(self, host, workers)
    }
}

impl StreamWriter {
    fn start(repo: &BackupRepository, host: &str, workers: usize) -> Result<Self> {
        let config = repo.repo.config();
        if config.chunker() != rustic_core::repofile::Chunker::Rabin {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the repository does not use restic's content-defined chunker",
            ));
        }
        let poly = config
            .poly()
            .map_err(|e| from_rustic("reading the repository's chunker", &e))?;
        let sizes = ChunkSizes {
            average: config.chunk_size(),
            min: config.chunk_min_size(),
            max: config.chunk_max_size(),
        }
        .checked()?;
        let level = config
            .zstd()
            .map_err(|e| from_rustic("reading the repository's compression", &e))?;
        let sealer = Sealer::new(&repo.repo.key(), level)?;
        let known = Known::read(&repo.repo)?;
        let (size, grow, limit) = config.packsize(BlobType::Data);
        let data_pack = pack_target(size, grow, limit, known.data_bytes);
        let (size, grow, limit) = config.packsize(BlobType::Tree);
        let tree_pack = pack_target(size, grow, limit, known.tree_bytes);
        let failure: FailureSlot = Arc::new(Mutex::new(None));
        let packer = Packer::new(
            Arc::clone(&repo.backend),
            sealer.clone(),
            BlobType::Data,
            data_pack,
        );
        let data = Arc::new(Mutex::new(known.data));
        let pool = Pool::start(
            workers,
            sealer.clone(),
            Arc::clone(&data),
            packer,
            failure.clone(),
        )?;
        let earlier = Earlier::read(
            &repo.repo,
            Arc::clone(&repo.backend),
            sealer.clone(),
            known.trees,
            data,
        )?;
        Ok(Self {
            backend: Arc::clone(&repo.backend),
            host: host.to_owned(),
            shared: Arc::new(Shared {
                entries: Mutex::new(Vec::new()),
                failure,
            }),
            pool: Some(pool),
            sealer,
            poly,
            sizes,
            earlier,
            tree_pack,
            started: jiff::Timestamp::now(),
        })
    }

    /// Starts the file `name` of the snapshot; write its bytes into the
    /// returned writer, then [`EntryWriter::finish`] it. Refuses a name
    /// that is not a plain file name and one already started.
    pub fn entry(&self, name: &str) -> Result<EntryWriter> {
        check_name(name)?;
        let mut entries = self
            .shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        check_unused(&entries, name)?;
        let jobs = self
            .pool
            .as_ref()
            .and_then(Pool::sender)
            .ok_or_else(|| Error::unexpected("the repository writer has stopped"))?;
        entries.push(EntryState::Open(name.to_owned()));
        Ok(EntryWriter {
            index: entries.len() - 1,
            name: name.to_owned(),
            chunker: Some(Chunker::new(self.poly, self.sizes)),
            seq: 0,
            size: 0,
            jobs,
            shared: Arc::clone(&self.shared),
        })
    }

    /// The names of the entries finished so far, in the order they were
    /// started.
    pub fn entries(&self) -> Vec<String> {
        let entries = self
            .shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .filter(|e| !matches!(e, EntryState::Open(_)))
            .map(|e| e.name().to_owned())
            .collect()
    }

    /// Takes the file `name` with content key `key` (see
    /// [`crate::StoredEntry::key`]; and of `size` bytes, when the caller
    /// knows it) from the newest earlier snapshot of this host that
    /// recorded it, without reading anything of it. Returns its size, or
    /// `None` when no earlier snapshot holds it whole: then write it with
    /// [`Self::entry`] or [`Self::add`]. Refuses a name that is not a
    /// plain file name, one already started and a malformed key.
    pub fn reuse(&self, name: &str, key: &str, size: Option<u64>) -> Result<Option<u64>> {
        check_name(name)?;
        reuse::check_key(key)?;
        let found = self.earlier.find(&self.host, name, key, size)?;
        let Some(taken) = found else {
            return Ok(None);
        };
        let mut entries = self
            .shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        check_unused(&entries, name)?;
        let size = taken.size;
        entries.push(EntryState::Reused {
            name: name.to_owned(),
            key: key.to_owned(),
            taken,
        });
        Ok(Some(size))
    }

    /// Stores all of `reader` as the file `name`, with content key `key`
    /// (see [`crate::StoredEntry::key`]). Returns its size.
    pub fn add(&self, name: &str, reader: &mut dyn Read, key: Option<&str>) -> Result<u64> {
        let mut entry = self.entry(name)?;
        io::copy(reader, &mut entry).map_err(|e| Error::io(format!("storing {name}"), e))?;
        entry.finish(key)
    }

    /// Waits for every chunk to be stored, then writes the index, the tree
    /// and last the snapshot, tagged `kastell` and `tags`. Refuses (and
    /// writes no snapshot) when an entry was not finished, when a worker
    /// or an upload failed, when nothing was stored and when a tag is not
    /// one restic can hold.
    pub fn finish(mut self, tags: &[String]) -> Result<RepoSnapshot> {
        let tags = snapshot_tags(tags)?;
        let entries = std::mem::take(
            &mut *self
                .shared
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Checked before waiting: an entry still open would keep the
        // workers waiting for its chunks.
        if let Some(EntryState::Open(name)) =
            entries.iter().find(|e| matches!(e, EntryState::Open(_)))
        {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("{name} did not end: no snapshot was written"),
            ));
        }
        if entries.is_empty() {
            return Err(Error::invalid_input("a snapshot needs at least one file"));
        }
        let collected = self
            .pool
            .take()
            .ok_or_else(|| Error::unexpected("the repository writer has stopped"))?
            .finish()?;
        let mut files = Vec::with_capacity(entries.len());
        let mut reused = 0;
        for (index, entry) in entries.into_iter().enumerate() {
            let (name, size, chunks, key) = match entry {
                EntryState::Done {
                    name,
                    size,
                    chunks,
                    key,
                } => (name, size, chunks, key),
                EntryState::Reused { name, key, taken } => {
                    reused += 1;
                    files.push(File {
                        name,
                        size: taken.size,
                        key: Some(key),
                        content: taken.content,
                    });
                    continue;
                }
                EntryState::Open(_) => continue,
            };
            let ids = collected.contents.get(&index).cloned().unwrap_or_default();
            if ids.len() != chunks || ids.iter().any(Option::is_none) {
                return Err(Error::unexpected(format!(
                    "{name}: {} of its {chunks} chunks were stored",
                    ids.iter().flatten().count()
                )));
            }
            let content = ids
                .into_iter()
                .flatten()
                .map(|id| Id::new(id).into())
                .collect();
            files.push(File {
                name,
                size,
                key,
                content,
            });
        }
        let tree = self.write_tree(&mut files)?;
        let mut packs: Vec<PackRecord> = collected.packs;
        packs.extend(tree.packs);
        write_index(self.backend.as_ref(), &self.sealer, &packs)?;
        let mut summary = SnapshotSummary::default();
        summary.files_new = (files.len() - reused) as u64;
        summary.files_unmodified = reused as u64;
        summary.total_files_processed = files.len() as u64;
        summary.total_bytes_processed = files.iter().map(|f| f.size).sum();
        summary.data_blobs = collected.blobs;
        summary.tree_blobs = tree.blobs;
        summary.data_added = collected.added;
        summary.data_added_packed = collected.added_packed + tree.packed;
        summary.data_added_files = collected.added;
        summary.data_added_files_packed = collected.added_packed;
        summary.data_added_trees_packed = tree.packed;
        self.write_snapshot(tree.id, tree.description, tags, summary)
    }

    /// Plans each file's time (see `reuse`), then writes the snapshot's
    /// one tree, unless the repository already holds it.
    fn write_tree(&self, files: &mut [File]) -> Result<WrittenTree> {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let planned: Vec<reuse::Planned> = files
            .iter()
            .map(|file| reuse::Planned {
                name: file.name.clone(),
                size: file.size,
                key: file.key.clone(),
            })
            .collect();
        let now = jiff::Timestamp::now().as_second();
        let earlier = &self.earlier;
        let plan = reuse::plan(earlier.snapshots(), &self.host, &planned, now);
        let mut tree = Tree::default();
        for (file, secs) in files.iter().zip(&plan.mtimes) {
            let mtime = jiff::Timestamp::from_second(*secs)
                .map_err(|e| Error::unexpected(format!("a file time out of range: {e}")))?;
            let mut node = file_node(&file.name, file.size, mtime);
            node.content = Some(file.content.clone());
            tree.nodes.push(node);
        }
        let (bytes, id) = tree
            .serialize()
            .map_err(|e| Error::unexpected(format!("writing the snapshot's tree: {e}")))?;
        let mut written = WrittenTree {
            id,
            description: plan.description,
            packs: Vec::new(),
            blobs: 0,
            packed: 0,
        };
        if earlier.holds_tree(&id) {
            return Ok(written);
        }
        let mut packer = Packer::new(
            Arc::clone(&self.backend),
            self.sealer.clone(),
            BlobType::Tree,
            self.tree_pack,
        );
        let (body, compressed) = self.sealer.compress(&bytes)?;
        let plain =
            u32::try_from(bytes.len()).map_err(|_| Error::unexpected("a tree over 4 GiB"))?;
        let sealed = self.sealer.encrypt(&body)?;
        packer.add(seal::sha256(&bytes), &sealed, compressed.then_some(plain))?;
        (written.packs, written.packed) = packer.finish()?;
        written.blobs = 1;
        Ok(written)
    }

    /// Writes the snapshot of `tree`, last of all.
    fn write_snapshot(
        &self,
        tree: rustic_core::TreeId,
        description: String,
        tags: Vec<StringList>,
        mut summary: SnapshotSummary,
    ) -> Result<RepoSnapshot> {
        let options = SnapshotOptions::default()
            .host(Some(self.host.clone()))
            .tags(tags)
            .description(Some(description));
        let mut snapshot = SnapshotFile::from_options(&options)
            .map_err(|e| from_rustic("preparing the snapshot", &e))?;
        snapshot.tree = tree;
        snapshot.paths.add(SNAPSHOT_ROOT.to_owned());
        let end = jiff::Timestamp::now();
        summary.command = "kastell".to_owned();
        summary.backup_start = self.started.to_zoned(jiff::tz::TimeZone::UTC);
        summary.backup_end = end.to_zoned(jiff::tz::TimeZone::UTC);
        summary.backup_duration = (end - self.started).get_milliseconds() as f64 / 1000.0;
        summary.total_duration = summary.backup_duration;
        snapshot.summary = Some(summary);
        let json = serde_json::to_vec(&snapshot)
            .map_err(|e| Error::unexpected(format!("writing the snapshot: {e}")))?;
        let (file, id) = self.sealer.file(&json)?;
        self.backend
            .write_bytes(FileType::Snapshot, &id, true, Bytes::from(file).into())
            .map_err(|e| from_rustic("writing the snapshot", &e))?;
        snapshot.id = id.into();
        Ok(RepoSnapshot::from_file(&snapshot))
    }
}

/// A finished entry, ready for the tree.
struct File {
    name: String,
    size: u64,
    key: Option<String>,
    content: Vec<DataId>,
}

/// The snapshot's tree, written (or found already stored).
struct WrittenTree {
    id: rustic_core::TreeId,
    /// The snapshot's description (see `reuse`).
    description: String,
    packs: Vec<PackRecord>,
    blobs: u64,
    packed: u64,
}

/// What the repository's index already holds.
struct Known {
    data: HashSet<Id>,
    /// Each tree blob and where it is.
    trees: HashMap<Id, TreeBlob>,
    data_bytes: u64,
    tree_bytes: u64,
}

impl Known {
    /// Reads every index file of `repo` (packs an index marks for deletion
    /// do not count).
    fn read(repo: &Repository<OpenStatus>) -> Result<Self> {
        let mut known = Self {
            data: HashSet::new(),
            trees: HashMap::new(),
            data_bytes: 0,
            tree_bytes: 0,
        };
        let files = repo
            .stream_files::<IndexFile>()
            .map_err(|e| from_rustic("reading the repository's index", &e))?;
        for file in files {
            let (_, index) = file.map_err(|e| from_rustic("reading the repository's index", &e))?;
            for pack in index.packs {
                match pack.blob_type() {
                    BlobType::Data => {
                        known.data_bytes += u64::from(pack.pack_size());
                        known.data.extend(pack.blobs.iter().map(|b| *b.id));
                    }
                    BlobType::Tree => {
                        known.tree_bytes += u64::from(pack.pack_size());
                        for blob in &pack.blobs {
                            let location = TreeBlob {
                                pack: *pack.id,
                                offset: blob.location.offset,
                                length: blob.location.length,
                                uncompressed: blob.location.uncompressed_length.map(u32::from),
                            };
                            known.trees.insert(*blob.id, location);
                        }
                    }
                }
            }
        }
        Ok(known)
    }
}

/// Refuses `name` when `entries` already holds it.
fn check_unused(entries: &[EntryState], name: &str) -> Result<()> {
    if entries.iter().any(|e| e.name() == name) {
        return Err(Error::invalid_input(format!(
            "{name:?} is stored twice in one snapshot"
        )));
    }
    Ok(())
}

/// One file of a [`StreamWriter`]'s snapshot, written as a stream: write
/// its bytes, then [`Self::finish`]. Dropped unfinished, it keeps its
/// snapshot from being written. Writes fail once the writer has failed.
pub struct EntryWriter {
    index: usize,
    name: String,
    chunker: Option<Chunker>,
    seq: usize,
    size: u64,
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EntryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryWriter")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl EntryWriter {
    /// Hands `chunk` to the workers.
    fn send(jobs: &Sender<Job>, index: usize, seq: &mut usize, data: Vec<u8>) -> io::Result<()> {
        let job = Job {
            entry: index,
            seq: *seq,
            data,
        };
        *seq += 1;
        jobs.send(job)
            .map_err(|_| io::Error::other("the repository writer has stopped"))
    }

    fn failure(&self) -> Option<io::Error> {
        let slot = self
            .shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .map(|e| io::Error::other(e.message().to_owned()))
    }

    /// Ends the file: its last chunk is queued and it is recorded with
    /// content key `key` (see [`crate::StoredEntry::key`]). Returns its
    /// size. Refuses a malformed key and a writer that has failed.
    pub fn finish(mut self, key: Option<&str>) -> Result<u64> {
        if let Some(key) = key {
            reuse::check_key(key)?;
        }
        if let Some(error) = self.failure() {
            return Err(Error::io(format!("storing {}", self.name), error));
        }
        if let Some(last) = self.chunker.take().and_then(Chunker::finish) {
            Self::send(&self.jobs, self.index, &mut self.seq, last)
                .map_err(|e| Error::io(format!("storing {}", self.name), e))?;
        }
        let mut entries = self
            .shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = entries.get_mut(self.index) {
            *slot = EntryState::Done {
                name: self.name.clone(),
                size: self.size,
                chunks: self.seq,
                key: key.map(str::to_owned),
            };
        }
        Ok(self.size)
    }
}

impl Write for EntryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        let Some(chunker) = self.chunker.as_mut() else {
            return Err(io::Error::other("the entry has ended"));
        };
        let (jobs, index, seq) = (&self.jobs, self.index, &mut self.seq);
        chunker.feed(buf, &mut |chunk| Self::send(jobs, index, seq, chunk))?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StreamWriter {
    /// What stopped this write (an upload that failed, a worker's error),
    /// if anything did: a copy, for the caller whose write into an entry
    /// failed because of it. The writer still refuses to finish.
    pub fn failure(&self) -> Option<Error> {
        gate::copy(&self.shared.failure)
    }

    /// Marks the write failed with `error` (a source that broke off, for
    /// example): [`Self::finish`] then refuses and writes no snapshot.
    pub fn fail(&self, error: Error) {
        gate::record(&self.shared.failure, error);
    }
}
