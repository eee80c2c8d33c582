//! An artifact read for the repository: opened and decompressed on a
//! thread of its own, only once the repository starts reading it (an
//! artifact an earlier snapshot already holds is never opened), and
//! checked against its content checksum as it ends.
//!
//! The decompression runs beside the repository's chunking and hashing
//! (one thread each, a few blocks apart) instead of on the same thread.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use kastell_core::types::ArtifactSource;

use super::digest::Digesting;
use crate::engine::backup::VerifiedSource;

/// Bytes per block handed from the decompressing thread.
const BLOCK: usize = 1 << 20;

/// Blocks the decompressing thread runs ahead, at most.
const AHEAD: usize = 4;

/// One block, or the error that ended the stream.
type Block = io::Result<Vec<u8>>;

/// The decompressed bytes of artifact `name`, read on a thread of their
/// own from the first read on; the last read fails when they do not hash
/// to `sha256`.
pub(super) struct ArtifactFeed {
    source: Option<(VerifiedSource, String, String)>,
    blocks: Option<Receiver<Block>>,
    current: Vec<u8>,
    at: usize,
}

impl ArtifactFeed {
    /// Artifact `name` of `source`, expected to hash to `sha256` (lower-case
    /// hex) decompressed. Nothing is opened yet.
    pub(super) fn new(source: VerifiedSource, name: &str, sha256: &str) -> Self {
        Self {
            source: Some((source, name.to_owned(), sha256.to_owned())),
            blocks: None,
            current: Vec::new(),
            at: 0,
        }
    }

    /// Starts the decompressing thread.
    fn start(&mut self) -> io::Result<()> {
        let Some((source, name, sha256)) = self.source.take() else {
            return Ok(());
        };
        let (tx, rx) = sync_channel::<Block>(AHEAD);
        std::thread::Builder::new()
            .name("kastell-repo-feed".into())
            .spawn(move || decompress(&source, &name, &sha256, &tx))?;
        self.blocks = Some(rx);
        Ok(())
    }
}

/// Sends artifact `name` of `source` decompressed over `tx` in blocks,
/// then an error if it did not hash to `sha256`. Stops when the reader is
/// gone.
fn decompress(source: &VerifiedSource, name: &str, sha256: &str, tx: &SyncSender<Block>) {
    let mut reader = match source.open(name) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.send(Err(io::Error::other(e.to_string())));
            return;
        }
    };
    let mut digest = Digesting::new(io::sink());
    loop {
        let mut block = vec![0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match reader.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(
                        e.kind(),
                        format!("decompressing {name}: {e}"),
                    )));
                    return;
                }
            }
        }
        if filled == 0 {
            break;
        }
        block.truncate(filled);
        // Writing into a sink cannot fail.
        let _ = io::Write::write_all(&mut digest, &block);
        if tx.send(Ok(block)).is_err() {
            return;
        }
    }
    let (_, _, actual) = digest.finish();
    if actual != sha256 {
        let _ = tx.send(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name} does not match the content checksum its backup recorded"),
        )));
    }
}

impl Read for ArtifactFeed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.start()?;
        while self.at == self.current.len() {
            let Some(blocks) = &self.blocks else {
                return Ok(0);
            };
            match blocks.recv() {
                Ok(block) => {
                    self.current = block?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
