//! Application-like text for the repository benchmark: this machine's real
//! package lists and documentation (`/var/lib/dpkg/status`, then every file
//! under `/usr/share/doc` and `/usr/share/man` in name order, gzip'd ones
//! decompressed), concatenated up to the size asked. It compresses as an
//! application's database dump does (names, versions, prose, repeated
//! field names), unlike random or md5-hex rows.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};

/// Where the text comes from, in this order.
const SOURCES: [&str; 4] = [
    "/var/lib/dpkg/status",
    "/var/lib/dpkg/available",
    "/usr/share/doc",
    "/usr/share/man",
];

/// Every regular file under `path` (or `path` itself), in name order.
fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_file() {
        out.push(path.to_path_buf());
    } else if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            files_under(&child, out);
        }
    }
}

/// Writes up to `bytes` of the text to `path` and returns how many it
/// wrote (fewer when the machine has less).
pub(crate) fn write(path: &Path, bytes: u64) -> Result<u64> {
    let mut files = Vec::new();
    for source in SOURCES {
        files_under(Path::new(source), &mut files);
    }
    let out = File::create(path).map_err(|e| Error::io("creating the text dump", e))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut written = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for file in files {
        if written >= bytes {
            break;
        }
        let Ok(handle) = File::open(&file) else {
            continue;
        };
        let mut reader: Box<dyn Read> = if file.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(handle))
        } else {
            Box::new(handle)
        };
        loop {
            let want = usize::try_from(bytes - written)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            // A damaged or unreadable file is skipped where it failed.
            let n = match reader.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("writing the text dump", e))?;
            written += n as u64;
        }
    }
    out.flush()
        .map_err(|e| Error::io("writing the text dump", e))?;
    Ok(written)
}
