//! Packs and the index, as restic lays them out.
//!
//! A pack is its sealed blobs one after another, then a sealed header
//! naming each (type, sealed length, uncompressed length when compressed,
//! id), then the header's sealed length (4 bytes, little-endian). Its id is
//! the SHA-256 of the whole file. An index file lists, for each pack, its
//! blobs' ids, types, offsets and lengths; restic finds data only through
//! the index, so a pack no index names is unused (prune removes it).

use std::sync::Arc;

use bytes::Bytes;
use kastell_core::Result;
use rustic_core::repofile::BlobType;
use rustic_core::{FileType, Id, WriteBackend};
use serde::Serialize;

use super::seal::{Sealer, id_of};
use crate::error::from_rustic;

/// The largest pack written whatever the repository says (restic reads
/// packs up to 4 GiB; a pack is held in memory until it is uploaded).
pub(crate) const MAX_PACK: u64 = 128 << 20;

/// A blob in a pack, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PackedBlob {
    #[serde(skip)]
    raw: [u8; 32],
    #[serde(serialize_with = "hex_id")]
    id: Id,
    #[serde(rename = "type")]
    kind: &'static str,
    offset: u32,
    length: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    uncompressed_length: Option<u32>,
}

/// An uploaded pack, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PackRecord {
    #[serde(serialize_with = "hex_id")]
    id: Id,
    blobs: Vec<PackedBlob>,
}

impl PackRecord {
    /// The pack's size in bytes.
    fn size(&self) -> u64 {
        self.blobs.iter().map(|b| u64::from(b.length)).sum()
    }
}

fn hex_id<S: serde::Serializer>(id: &Id, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}

#[derive(Serialize)]
struct IndexJson<'a> {
    packs: &'a [PackRecord],
}

/// The pack size restic's rules give blobs of one type: the repository's
/// size for them, grown by the square root of what packs of that type
/// already hold times the growth factor, up to the limit (and
/// [`MAX_PACK`]).
pub(crate) fn pack_target(default: u32, grow: u32, limit: u32, existing: u64) -> u64 {
    let grown = u64::from(default) + existing.isqrt() * u64::from(grow);
    grown.min(u64::from(limit)).clamp(1, MAX_PACK)
}

/// Fills packs of one blob type and uploads each when it reaches its
/// target size.
pub(crate) struct Packer {
    backend: Arc<dyn WriteBackend>,
    sealer: Sealer,
    kind: BlobType,
    target: u64,
    body: Vec<u8>,
    blobs: Vec<PackedBlob>,
    done: Vec<PackRecord>,
}

impl Packer {
    /// A packer of `kind` blobs into packs of about `target` bytes.
    pub(crate) fn new(
        backend: Arc<dyn WriteBackend>,
        sealer: Sealer,
        kind: BlobType,
        target: u64,
    ) -> Self {
        Self {
            backend,
            sealer,
            kind,
            target,
            body: Vec::new(),
            blobs: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Adds the blob whose id (the SHA-256 of its plain bytes) is `raw`,
    /// already `sealed`, which was compressed from `uncompressed` bytes
    /// (`None`: stored as it is); uploads the pack once it is full.
    pub(crate) fn add(
        &mut self,
        raw: [u8; 32],
        sealed: &[u8],
        uncompressed: Option<u32>,
    ) -> Result<()> {
        let length = u32::try_from(sealed.len())
            .map_err(|_| kastell_core::Error::unexpected("a blob over 4 GiB"))?;
        let offset = u32::try_from(self.body.len())
            .map_err(|_| kastell_core::Error::unexpected("a pack over 4 GiB"))?;
        self.body.extend_from_slice(sealed);
        self.blobs.push(PackedBlob {
            raw,
            id: Id::new(raw),
            kind: match self.kind {
                BlobType::Data => "data",
                BlobType::Tree => "tree",
            },
            offset,
            length,
            uncompressed_length: uncompressed,
        });
        if self.body.len() as u64 >= self.target {
            self.upload()?;
        }
        Ok(())
    }

    /// Uploads the pack being filled, if it holds anything.
    fn upload(&mut self) -> Result<()> {
        if self.blobs.is_empty() {
            return Ok(());
        }
        let mut header = Vec::with_capacity(self.blobs.len() * 41);
        for blob in &self.blobs {
            let compressed = blob.uncompressed_length.is_some();
            header.push(match (self.kind, compressed) {
                (BlobType::Data, false) => 0,
                (BlobType::Tree, false) => 1,
                (BlobType::Data, true) => 2,
                (BlobType::Tree, true) => 3,
            });
            header.extend_from_slice(&blob.length.to_le_bytes());
            if let Some(plain) = blob.uncompressed_length {
                header.extend_from_slice(&plain.to_le_bytes());
            }
            header.extend_from_slice(&blob.raw);
        }
        let sealed_header = self.sealer.encrypt(&header)?;
        let mut pack = std::mem::take(&mut self.body);
        pack.extend_from_slice(&sealed_header);
        let header_len = u32::try_from(sealed_header.len())
            .map_err(|_| kastell_core::Error::unexpected("a pack header over 4 GiB"))?;
        pack.extend_from_slice(&header_len.to_le_bytes());
        let id = id_of(&pack);
        self.backend
            .write_bytes(FileType::Pack, &id, false, Bytes::from(pack).into())
            .map_err(|e| from_rustic("uploading a pack", &e))?;
        self.done.push(PackRecord {
            id,
            blobs: std::mem::take(&mut self.blobs),
        });
        Ok(())
    }

    /// Uploads the last pack and returns every pack written, with the
    /// bytes they hold.
    pub(crate) fn finish(mut self) -> Result<(Vec<PackRecord>, u64)> {
        self.upload()?;
        let bytes = self.done.iter().map(PackRecord::size).sum();
        Ok((self.done, bytes))
    }
}

/// Writes one index file naming `packs`. Nothing is written for none.
pub(crate) fn write_index(
    backend: &dyn WriteBackend,
    sealer: &Sealer,
    packs: &[PackRecord],
) -> Result<()> {
    if packs.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(&IndexJson { packs })
        .map_err(|e| kastell_core::Error::unexpected(format!("writing the index: {e}")))?;
    let (file, id) = sealer.file(&json)?;
    backend
        .write_bytes(FileType::Index, &id, true, Bytes::from(file).into())
        .map_err(|e| from_rustic("writing the index", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_grow_with_the_repository_up_to_the_limits() {
        assert_eq!(pack_target(32 << 20, 32, u32::MAX, 0), 32 << 20);
        // 1 GiB of packs: sqrt is 32768, times 32 is 1 MiB more.
        assert_eq!(
            pack_target(32 << 20, 32, u32::MAX, 1 << 30),
            (32 << 20) + (1 << 20)
        );
        assert_eq!(pack_target(32 << 20, 32, 16 << 20, 0), 16 << 20);
        assert_eq!(pack_target(u32::MAX, 0, u32::MAX, 0), MAX_PACK);
    }
}
