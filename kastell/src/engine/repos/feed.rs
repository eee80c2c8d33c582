//! An artifact read for the repository: its stored file opened,
//! decompressed and checked against the manifest's SHA-256 on a thread of
//! its own (`CheckedArtifact`: one read, no verification pass before it),
//! beside the repository's chunking and hashing, a few blocks apart.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use kastell_core::types::ArtifactRecord;

use super::digest::Digesting;
use crate::engine::backup::StoredBackup;

/// Bytes per block handed from the decompressing thread.
const BLOCK: usize = 1 << 20;

/// Blocks the decompressing thread runs ahead, at most.
const AHEAD: usize = 4;

/// What the decompressing thread sends.
enum Piece {
    /// The next bytes.
    Block(Vec<u8>),
    /// The end, checked: the decompressed size and SHA-256 when they were
    /// asked for.
    End(Option<(u64, String)>),
}

/// The decompressed bytes of one artifact, read on a thread of their own;
/// the read that ends them fails when the stored file does not match the
/// manifest's checksum.
pub(super) struct ArtifactFeed {
    pieces: Receiver<io::Result<Piece>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
    content: Option<(u64, String)>,
}

impl ArtifactFeed {
    /// Artifact `record` of `backup`, its decompressed bytes also hashed
    /// when `digest` (see [`Self::content`]). The thread starts now.
    pub(super) fn start(
        backup: StoredBackup,
        record: ArtifactRecord,
        digest: bool,
    ) -> io::Result<Self> {
        let (tx, rx) = sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("kastell-repo-feed".into())
            .spawn(move || decompress(&backup, &record, digest, &tx))?;
        Ok(Self {
            pieces: rx,
            current: Vec::new(),
            at: 0,
            ended: false,
            content: None,
        })
    }

    /// The decompressed size and SHA-256, once every byte was read and
    /// checked, when they were asked for.
    pub(super) fn content(&self) -> Option<&(u64, String)> {
        self.content.as_ref()
    }
}

/// Sends artifact `record` of `backup` decompressed over `tx` in blocks,
/// then its end (or the error that stopped it). Stops when the reader is
/// gone.
fn decompress(
    backup: &StoredBackup,
    record: &ArtifactRecord,
    digest: bool,
    tx: &SyncSender<io::Result<Piece>>,
) {
    let mut reader = match backup.open_checked(record) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.send(Err(io::Error::other(e.to_string())));
            return;
        }
    };
    let mut content = digest.then(|| Digesting::new(io::sink()));
    loop {
        let mut block = vec![0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match reader.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if filled == 0 {
            break;
        }
        block.truncate(filled);
        if let Some(content) = &mut content {
            // Writing into a sink cannot fail.
            let _ = io::Write::write_all(content, &block);
        }
        if tx.send(Ok(Piece::Block(block))).is_err() {
            return;
        }
    }
    let content = content.map(|c| {
        let (_, size, sha256) = c.finish();
        (size, sha256)
    });
    let _ = tx.send(Ok(Piece::End(content)));
}

impl Read for ArtifactFeed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.at == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.pieces.recv() {
                Ok(piece) => match piece? {
                    Piece::Block(block) => {
                        self.current = block;
                        self.at = 0;
                    }
                    Piece::End(content) => {
                        self.ended = true;
                        self.content = content;
                    }
                },
                Err(_) => {
                    return Err(io::Error::other(
                        "the artifact's reading thread stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
