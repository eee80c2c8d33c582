//! What happens to an artifact's bytes between the SSH channel and the
//! disk, on the artifact's writer thread: decoded from the wire codec when
//! the server compressed them, encoded with the stored compression, hashed
//! and counted as they reach the file.
//!
//! A zstd stream from the server that is stored as zstd is written as it
//! arrives (no second compression) and decoded on the side, which proves it
//! whole (a truncated or damaged stream fails the artifact) and counts the
//! bytes it stands for.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use kastell_core::types::Compression;
use kastell_core::wire::WireCodec;
use sha2::{Digest, Sha256};

use super::digest::Digesting;
use super::tap::{Tap, Tapped};

/// How kastell compresses locally: the plan's zstd level (1 unless the
/// planner found cores to spare for more, see `wire::plan`) on every core
/// but the one that reads SSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LocalZstd {
    /// zstd level, 1..=9.
    pub level: u8,
    /// zstd worker threads, at least 1.
    pub workers: u32,
}

impl LocalZstd {
    /// `level` on this machine's spare cores.
    pub(super) fn at(level: u8) -> Self {
        Self {
            level,
            workers: super::wire::local_workers(super::wire::local_cores()),
        }
    }
}

/// What reached the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    /// Size of the stored file.
    pub size: u64,
    /// Lower-case hex SHA-256 of the stored file.
    pub sha256: String,
    /// Bytes of the artifact before any compression.
    pub uncompressed: u64,
    /// Lower-case hex SHA-256 of those bytes.
    pub content_sha256: String,
}

/// A failed write to the local file, told apart from a damaged stream.
#[derive(Debug)]
struct DiskError(String);

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DiskError {}

/// Whether `e` came from writing the local file.
pub(super) fn is_disk_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<DiskError>())
}

/// A file writer that hashes and counts what reaches the disk.
pub(super) struct HashingFile {
    file: BufWriter<File>,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl HashingFile {
    /// Writes into `file` (named `path` in errors).
    pub(super) fn new(file: File, path: &Path) -> Self {
        Self {
            file: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn disk(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            DiskError(format!(
                "writing the local backup file {}: {e}",
                self.path.display()
            )),
        )
    }

    /// Flushes and fsyncs; returns size and SHA-256 of the file.
    fn finish(mut self) -> io::Result<(u64, String)> {
        self.file.flush().map_err(|e| self.disk(e))?;
        self.file.get_ref().sync_all().map_err(|e| self.disk(e))?;
        let digest = self.hasher.finalize();
        Ok((
            self.size,
            digest.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }
}

impl Write for HashingFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data).map_err(|e| self.disk(e))?;
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().map_err(|e| self.disk(e))
    }
}

/// The chunks the reading thread hands over, as a [`Read`]; it stops with
/// an error once the artifact is abandoned.
pub(super) struct Chunks {
    queue: Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    abandoned: Arc<AtomicBool>,
}

impl Chunks {
    /// Reads what arrives on `queue` until every sender is gone.
    pub(super) fn new(queue: Receiver<Vec<u8>>, abandoned: Arc<AtomicBool>) -> Self {
        Self {
            queue,
            current: Vec::new(),
            pos: 0,
            abandoned,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.queue.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        if self.abandoned.load(Ordering::Relaxed) {
            return Err(io::Error::other("artifact abandoned"));
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Passes reads through and writes a copy of them into `copy`.
struct Tee<R> {
    inner: R,
    copy: HashingFile,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Where decoded bytes go: the file as they are, or through zstd.
enum Encode {
    Plain(HashingFile),
    Zstd(Box<zstd::stream::write::Encoder<'static, HashingFile>>),
}

impl Encode {
    fn new(compression: Compression, local: LocalZstd, file: HashingFile) -> io::Result<Self> {
        match compression {
            Compression::None => Ok(Self::Plain(file)),
            Compression::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(file, i32::from(local.level.clamp(1, 9)))?;
                encoder.multithread(local.workers.max(1))?;
                Ok(Self::Zstd(Box::new(encoder)))
            }
            Compression::Gzip => Err(io::Error::other(
                "kastell writes zstd or uncompressed artifacts, not gzip",
            )),
        }
    }

    fn finish(self) -> io::Result<(u64, String)> {
        match self {
            Self::Plain(file) => file.finish(),
            Self::Zstd(encoder) => encoder.finish()?.finish(),
        }
    }
}

impl Write for Encode {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(data),
            Self::Zstd(w) => w.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Zstd(w) => w.flush(),
        }
    }
}

/// Copies `input` (encoded with `codec`) into `file`, stored with
/// `compression` (zstd as `local` says), and returns what was stored. The file is flushed and
/// fsynced. A stream that does not decode fails. The decoded bytes also
/// go into `tap`, ended once the file is whole.
pub(super) fn run(
    input: Chunks,
    codec: WireCodec,
    compression: Compression,
    local: LocalZstd,
    file: HashingFile,
    tap: Tap,
) -> io::Result<Stored> {
    if codec.compression() == Compression::Zstd && compression == Compression::Zstd {
        return store_as_sent(input, file, tap);
    }
    let mut decoded: Box<dyn Read> = match codec.compression() {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(input))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    };
    let mut encode = Digesting::new(Tapped {
        inner: Encode::new(compression, local, file)?,
        tap,
    });
    io::copy(&mut decoded, &mut encode)?;
    let (encode, uncompressed, content_sha256) = encode.finish();
    let (size, sha256) = encode.inner.finish()?;
    encode.tap.finish(&sha256);
    Ok(Stored {
        size,
        sha256,
        uncompressed,
        content_sha256,
    })
}

/// A zstd stream stored as it arrives, decoded on the side (into `tap`
/// too).
fn store_as_sent(input: Chunks, file: HashingFile, tap: Tap) -> io::Result<Stored> {
    let tee = Tee {
        inner: input,
        copy: file,
    };
    let mut decoder = zstd::stream::read::Decoder::with_buffer(BufReader::new(tee))?;
    let mut content = Digesting::new(Tapped {
        inner: io::sink(),
        tap,
    });
    io::copy(&mut decoder, &mut content)?;
    let (tapped, uncompressed, content_sha256) = content.finish();
    // Whatever follows the last frame is stored too, and must be nothing.
    let mut rest = decoder.finish();
    let trailing = io::copy(&mut rest, &mut io::sink())?;
    if trailing > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{trailing} bytes follow the end of the zstd stream"),
        ));
    }
    let (size, sha256) = rest.into_inner().copy.finish()?;
    tapped.tap.finish(&sha256);
    Ok(Stored {
        size,
        sha256,
        uncompressed,
        content_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn feed(
        bytes: &[u8],
        codec: WireCodec,
        compression: Compression,
    ) -> (io::Result<Stored>, Vec<u8>) {
        feed_at(bytes, codec, compression, LocalZstd::at(1))
    }

    fn feed_at(
        bytes: &[u8],
        codec: WireCodec,
        compression: Compression,
        local: LocalZstd,
    ) -> (io::Result<Stored>, Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a");
        let file = HashingFile::new(File::create(&path).unwrap(), &path);
        let (tx, rx) = sync_channel(4);
        let chunks: Vec<Vec<u8>> = bytes.chunks(1000).map(<[u8]>::to_vec).collect();
        let sender = std::thread::spawn(move || {
            for c in chunks {
                if tx.send(c).is_err() {
                    break;
                }
            }
        });
        let result = run(
            Chunks::new(rx, Arc::new(AtomicBool::new(false))),
            codec,
            compression,
            local,
            file,
            Tap::default(),
        );
        sender.join().unwrap();
        (result, std::fs::read(&path).unwrap())
    }

    fn dump() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("{i}\trow {i}\n").into_bytes())
            .collect()
    }

    fn unzstd(bytes: &[u8]) -> Vec<u8> {
        zstd::stream::decode_all(bytes).unwrap()
    }

    #[test]
    fn the_local_level_and_workers_are_the_plans() {
        let data = kastell_testkit::data::app_rows(3, 4 << 20);
        let mut sizes = Vec::new();
        for local in [
            LocalZstd {
                level: 1,
                workers: 1,
            },
            LocalZstd {
                level: 6,
                workers: 1,
            },
            LocalZstd {
                level: 6,
                workers: 3,
            },
        ] {
            let (stored, file) = feed_at(&data, WireCodec::Raw, Compression::Zstd, local);
            assert_eq!(stored.unwrap().uncompressed, data.len() as u64);
            assert!(unzstd(&file) == data, "{local:?}");
            sizes.push(file.len());
        }
        assert!(sizes[1] < sizes[0], "level 6 beats level 1: {sizes:?}");
        assert!(LocalZstd::at(3).workers >= 1);
    }

    #[test]
    fn a_server_zstd_stream_is_stored_as_sent_and_counted() {
        let data = dump();
        let sent = zstd::stream::encode_all(&data[..], 3).unwrap();
        let (stored, file) = feed(&sent, WireCodec::Zstd, Compression::Zstd);
        let stored = stored.unwrap();
        assert_eq!(file, sent, "no second compression");
        assert_eq!(stored.size, sent.len() as u64);
        assert_eq!(stored.uncompressed, data.len() as u64);
        assert_eq!(stored.sha256, hex_sha256(&file));
        assert_eq!(
            stored.content_sha256,
            hex_sha256(&data),
            "the decoded bytes'"
        );
    }

    fn hex_sha256(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn gzip_and_raw_streams_are_stored_as_zstd() {
        let data = dump();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        for (codec, sent) in [
            (WireCodec::Gzip, &gz),
            (WireCodec::Pigz, &gz),
            (WireCodec::Raw, &data),
        ] {
            let (stored, file) = feed(sent, codec, Compression::Zstd);
            let stored = stored.unwrap();
            assert_eq!(unzstd(&file), data, "{codec}");
            assert_eq!(stored.uncompressed, data.len() as u64);
            assert_eq!(stored.content_sha256, hex_sha256(&data), "{codec}");
            assert_eq!(stored.size, file.len() as u64);
        }
        // Stored uncompressed: a zstd stream is decoded.
        let sent = zstd::stream::encode_all(&data[..], 1).unwrap();
        let (stored, file) = feed(&sent, WireCodec::Zstd, Compression::None);
        assert_eq!(file, data);
        assert_eq!(stored.unwrap().uncompressed, data.len() as u64);
    }

    #[test]
    fn truncated_or_damaged_streams_fail() {
        let data = dump();
        let sent = zstd::stream::encode_all(&data[..], 1).unwrap();
        let (result, _) = feed(&sent[..sent.len() / 2], WireCodec::Zstd, Compression::Zstd);
        let err = result.unwrap_err();
        assert!(!is_disk_error(&err), "{err}");
        let mut trailing = sent.clone();
        trailing.extend_from_slice(b"garbage after the frame");
        assert!(
            feed(&trailing, WireCodec::Zstd, Compression::Zstd)
                .0
                .is_err()
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert!(
            feed(&gz[..gz.len() / 2], WireCodec::Gzip, Compression::Zstd)
                .0
                .is_err()
        );
    }
}
