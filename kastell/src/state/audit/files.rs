//! The audit log's files on disk: hashing a line, finding the last line
//! without reading the whole file, listing the rotated files and reading
//! a file's lines as they were written.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind as IoKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};

use crate::state::store::open_regular;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of `bytes`.
pub(crate) fn hash_line(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `path` with `.n` appended (`audit.jsonl.3`).
pub(crate) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The rotated files next to `current` (`audit.jsonl.1`, `.2`, ...) that
/// exist, with their numbers, oldest (highest number) first.
pub(crate) fn rotated_files(current: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let (Some(dir), Some(name)) = (current.parent(), current.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let number = file_name
            .strip_prefix(&prefix)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0);
        if let Some(n) = number {
            found.push((n, entry.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// The last line of the file at `path` (without its newline), read from
/// the end in blocks: `None` when the file is missing or empty. The flag
/// says whether the file ends with a newline (a file that does not was cut
/// mid-line, for example by a crash during a write).
pub(crate) fn last_line(path: &Path) -> Result<Option<(Vec<u8>, bool)>> {
    const BLOCK: u64 = 4096;
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let io = |e| Error::io(format!("reading {}", path.display()), e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok(None);
    }
    // Bytes from `start` to the end of the file, growing backwards until
    // they hold a newline before the line's own.
    let mut tail: Vec<u8> = Vec::new();
    let mut start = len;
    let mut terminated = None;
    loop {
        let step = BLOCK.min(start);
        start -= step;
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut block = vec![0u8; usize::try_from(step).unwrap_or(0)];
        file.read_exact(&mut block).map_err(io)?;
        block.extend_from_slice(&tail);
        tail = block;
        let ends_with_newline = *terminated.get_or_insert(tail.last() == Some(&b'\n'));
        let body_end = if ends_with_newline {
            tail.len() - 1
        } else {
            tail.len()
        };
        if let Some(pos) = tail[..body_end].iter().rposition(|b| *b == b'\n') {
            return Ok(Some((tail[pos + 1..body_end].to_vec(), ends_with_newline)));
        }
        if start == 0 {
            return Ok(Some((tail[..body_end].to_vec(), ends_with_newline)));
        }
    }
}

/// Reads the lines of an open audit file one at a time, exactly as
/// written (without the newline), with their 1-based line numbers.
pub(crate) struct Lines {
    reader: BufReader<File>,
    path: PathBuf,
    number: usize,
}

impl Lines {
    /// The lines of `path`; `None` when it does not exist. Refuses what
    /// is not a regular file (without blocking on a FIFO).
    pub(crate) fn open(path: &Path) -> Result<Option<Self>> {
        Ok(open_regular(path)?.map(|file| Self {
            reader: BufReader::new(file),
            path: path.to_owned(),
            number: 0,
        }))
    }

    /// The next line: its number, its bytes and whether a newline ended
    /// it; `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> Result<Option<(usize, Vec<u8>, bool)>> {
        let mut buf = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        if n == 0 {
            return Ok(None);
        }
        let terminated = buf.last() == Some(&b'\n');
        if terminated {
            buf.pop();
        }
        self.number += 1;
        Ok(Some((self.number, buf, terminated)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_is_found_across_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        assert_eq!(last_line(&path).unwrap(), None);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(last_line(&path).unwrap(), None);
        std::fs::write(&path, b"only\n").unwrap();
        assert_eq!(last_line(&path).unwrap(), Some((b"only".to_vec(), true)));
        std::fs::write(&path, b"only").unwrap();
        assert_eq!(last_line(&path).unwrap(), Some((b"only".to_vec(), false)));
        let long = "x".repeat(10_000);
        std::fs::write(&path, format!("first\n{long}\n")).unwrap();
        assert_eq!(
            last_line(&path).unwrap(),
            Some((long.clone().into_bytes(), true))
        );
        std::fs::write(&path, format!("{}\nshort\n", "y".repeat(9000))).unwrap();
        assert_eq!(last_line(&path).unwrap(), Some((b"short".to_vec(), true)));
        // A newline exactly at a block boundary.
        let head = "z".repeat(4096 * 2 - 7);
        std::fs::write(&path, format!("{head}\nabcde\n")).unwrap();
        assert_eq!(last_line(&path).unwrap(), Some((b"abcde".to_vec(), true)));
    }

    #[test]
    fn rotated_files_are_listed_oldest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let current = tmp.path().join("audit.jsonl");
        for name in [
            "audit.jsonl.1",
            "audit.jsonl.3",
            "audit.jsonl.10",
            "audit.jsonl.x",
            "audit.jsonl.",
            "audit.jsonl.0",
            "other.1",
        ] {
            std::fs::write(tmp.path().join(name), b"").unwrap();
        }
        let numbers: Vec<usize> = rotated_files(&current)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, vec![10, 3, 1]);
    }
}
