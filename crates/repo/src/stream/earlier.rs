//! Content an earlier snapshot holds, taken without reading it.
//!
//! Every snapshot kastell writes records, in its description, each
//! entry's name, size and content key (see `reuse`). An entry of the
//! snapshot being written whose name and key (and size, when the caller
//! knows it) the newest such snapshot of the same host recorded gets that
//! snapshot's chunk list for it: the snapshot's tree is read from its pack
//! (found through the index the writer read), decrypted, checked against
//! its id and parsed, and every chunk it names must still be in the
//! index. Anything short of that (a snapshot restic wrote, a tree that
//! does not read, a chunk pruned away) means the entry is read instead.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use kastell_core::{Error, ErrorKind, Result};
use rustic_core::repofile::{NodeType, SnapshotFile, Tree};
use rustic_core::{DataId, FileType, Id, OpenStatus, Repository, WriteBackend};

use super::seal::{Sealer, sha256};
use crate::error::from_rustic;
use crate::reuse;

/// Where a tree blob is, as the index says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TreeBlob {
    /// The pack holding it.
    pub pack: Id,
    /// Its offset in the pack.
    pub offset: u32,
    /// Its sealed length.
    pub length: u32,
    /// Its plain length when it is compressed.
    pub uncompressed: Option<u32>,
}

/// An entry taken from an earlier snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Its size, as the earlier snapshot recorded it.
    pub size: u64,
    /// Its chunks, in order.
    pub content: Vec<DataId>,
}

/// The earlier snapshots of the repository and what is needed to read
/// their trees.
pub(crate) struct Earlier {
    backend: Arc<dyn WriteBackend>,
    sealer: Sealer,
    /// Every tree blob the index names.
    trees: HashMap<Id, TreeBlob>,
    /// Every data blob the index names, and those this write added.
    data: Arc<Mutex<HashSet<Id>>>,
    snapshots: Vec<SnapshotFile>,
}

impl Earlier {
    /// Every snapshot of `repo` (read now), whose trees `trees` locates
    /// and whose chunks must be in `data`.
    pub(crate) fn read(
        repo: &Repository<OpenStatus>,
        backend: Arc<dyn WriteBackend>,
        sealer: Sealer,
        trees: HashMap<Id, TreeBlob>,
        data: Arc<Mutex<HashSet<Id>>>,
    ) -> Result<Self> {
        let snapshots = repo
            .get_all_snapshots()
            .map_err(|e| from_rustic("listing the repository's snapshots", &e))?;
        Ok(Self {
            backend,
            sealer,
            trees,
            data,
            snapshots,
        })
    }

    /// Whether the index names tree `id`.
    pub(crate) fn holds_tree(&self, id: &Id) -> bool {
        self.trees.contains_key(id)
    }

    /// Every snapshot in the repository when the write started.
    pub(crate) fn snapshots(&self) -> &[SnapshotFile] {
        &self.snapshots
    }

    /// The content of entry `name` with key `key` (and `size`, when
    /// known) in the newest snapshot of `host` that recorded it, or `None`
    /// when none did or its content cannot be taken whole.
    pub(crate) fn find(
        &self,
        host: &str,
        name: &str,
        key: &str,
        size: Option<u64>,
    ) -> Result<Option<Taken>> {
        let Some((tree, recorded)) = reuse::find(&self.snapshots, host, name, key, size)
            .map(|(snapshot, recorded)| (*snapshot.tree, recorded))
        else {
            return Ok(None);
        };
        let tree = match self.tree(&tree) {
            Ok(tree) => tree,
            Err(error) => {
                tracing::warn!(
                    entry = name,
                    error = %error,
                    "an earlier snapshot's tree did not read: the entry is read instead"
                );
                return Ok(None);
            }
        };
        let Some(node) = tree.nodes.into_iter().find(|node| {
            node.name == name && node.node_type == NodeType::File && node.meta.size == recorded.size
        }) else {
            return Ok(None);
        };
        let content = node.content.unwrap_or_default();
        let whole = {
            let data = self.data.lock().unwrap_or_else(PoisonError::into_inner);
            content.iter().all(|id| data.contains(&**id))
        };
        // An empty file has no chunks; any other needs at least one.
        if !whole || (content.is_empty() && recorded.size > 0) {
            return Ok(None);
        }
        Ok(Some(Taken {
            size: recorded.size,
            content,
        }))
    }

    /// Tree `id`, read from its pack and checked against its id.
    fn tree(&self, id: &Id) -> Result<Tree> {
        let blob = self
            .trees
            .get(id)
            .ok_or_else(|| Error::not_found("the tree is in no pack the index names"))?;
        let sealed = self
            .backend
            .read_partial(FileType::Pack, &blob.pack, true, blob.offset, blob.length)
            .map_err(|e| from_rustic("reading an earlier snapshot's tree", &e))?;
        let body = self.sealer.open(&sealed)?;
        let plain = match blob.uncompressed {
            Some(length) => zstd::bulk::decompress(&body, length as usize)
                .map_err(|e| Error::io("decompressing an earlier snapshot's tree", e))?,
            None => body,
        };
        if Id::new(sha256(&plain)) != *id {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "an earlier snapshot's tree does not match its id",
            ));
        }
        serde_json::from_slice(&plain).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("an earlier snapshot's tree does not parse: {e}"),
            )
        })
    }
}
