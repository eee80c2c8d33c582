//! Reading one file out of a tar archive (the configuration archive's
//! dotenv file), without a dependency: ustar, GNU long names and pax paths.

use std::fmt;
use std::io::Read;

use kastell_core::{Error, ErrorKind, Result};

/// A regular file found in a tar archive. `Debug` leaves its content out
/// (a dotenv file holds keys).
pub(crate) struct TarMember {
    /// Its name as archived (`source/.env`, maybe with a leading `./`).
    pub(crate) name: String,
    /// Its permission bits.
    pub(crate) mode: u32,
    /// Its content.
    pub(crate) data: Vec<u8>,
}

impl fmt::Debug for TarMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TarMember")
            .field("name", &self.name)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("bytes", &self.data.len())
            .finish()
    }
}

fn normalise(name: &str) -> &str {
    let mut name = name;
    loop {
        if let Some(rest) = name.strip_prefix("./") {
            name = rest;
        } else if let Some(rest) = name.strip_prefix('/') {
            name = rest;
        } else {
            return name;
        }
    }
}

fn field_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A numeric header field: octal (space/NUL padded), or GNU base-256 when
/// its first byte has the high bit set.
fn field_number(bytes: &[u8]) -> Result<u64> {
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(bytes[0] & 0x7f);
        for &b in &bytes[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(not_a_tar)?;
        }
        return Ok(n);
    }
    let text = field_str(bytes);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| not_a_tar())
}

fn not_a_tar() -> Error {
    Error::new(
        ErrorKind::Corrupt,
        "the configuration archive is not a readable tar archive",
    )
    .with_hint("Nothing was changed on the server; restore another backup")
}

/// Reads a whole 512-byte block; `Ok(false)` at a clean end of input.
fn read_block(reader: &mut dyn Read, block: &mut [u8; 512]) -> Result<bool> {
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(not_a_tar()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading the configuration archive", e)),
        }
    }
    Ok(true)
}

fn read_data(reader: &mut dyn Read, size: u64, keep: bool) -> Result<Vec<u8>> {
    let padded = size.div_ceil(512) * 512;
    let mut data = Vec::new();
    let mut limited = reader.take(padded);
    if keep {
        limited
            .read_to_end(&mut data)
            .map_err(|e| Error::io("reading the configuration archive", e))?;
        if (data.len() as u64) < padded {
            return Err(not_a_tar());
        }
        data.truncate(usize::try_from(size).map_err(|_| not_a_tar())?);
    } else {
        let skipped = std::io::copy(&mut limited, &mut std::io::sink())
            .map_err(|e| Error::io("reading the configuration archive", e))?;
        if skipped < padded {
            return Err(not_a_tar());
        }
    }
    Ok(data)
}

/// The regular file `wanted` (compared without a leading `./` or `/`) of the
/// tar archive `reader` (ustar, GNU long names, pax paths), at most `max`
/// bytes. `None` when the archive does not hold it; an error when the
/// archive is not a tar archive (bad header checksum, truncated) or the
/// file is larger than `max`.
pub(crate) fn tar_member(
    mut reader: impl Read,
    wanted: &str,
    max: u64,
) -> Result<Option<TarMember>> {
    let wanted = normalise(wanted);
    let mut block = [0u8; 512];
    let mut long_name: Option<String> = None;
    loop {
        if !read_block(&mut reader, &mut block)? || block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let recorded = field_number(&block[148..156])?;
        let sum: u64 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if sum != recorded {
            return Err(not_a_tar());
        }
        let size = field_number(&block[124..136])?;
        let kind = block[156];
        let name = long_name.take().unwrap_or_else(|| {
            let name = field_str(&block[0..100]);
            if &block[257..262] == b"ustar" {
                let prefix = field_str(&block[345..500]);
                if !prefix.is_empty() {
                    return format!("{prefix}/{name}");
                }
            }
            name
        });
        match kind {
            b'L' | b'x' => {
                if size > 1024 * 1024 {
                    return Err(not_a_tar());
                }
                let data = read_data(&mut reader, size, true)?;
                long_name = if kind == b'L' {
                    Some(field_str(&data))
                } else {
                    pax_path(&data)
                };
            }
            b'0' | 0 | b'7' if normalise(&name) == wanted => {
                if size > max {
                    return Err(Error::invalid_input(format!(
                        "{wanted} in the configuration archive is larger than {max} bytes"
                    ))
                    .with_hint("Nothing was changed on the server; restore another backup"));
                }
                let data = read_data(&mut reader, size, true)?;
                let mode = u32::try_from(field_number(&block[100..108])?).unwrap_or(0o600);
                return Ok(Some(TarMember { name, mode, data }));
            }
            _ => {
                read_data(&mut reader, size, false)?;
            }
        }
    }
}

/// The `path` record of a pax extended header (`<len> path=<name>\n`).
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.split('\n').find_map(|record| {
        let (_, kv) = record.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use kastell_testkit::platform::tar_archive_with_modes as tar_of;

    #[test]
    fn tar_members_are_found_by_name() {
        let tar = tar_of(&[
            ("source/docker-compose.yml", 0o644, b"services: {}\n"),
            ("./source/.env", 0o600, b"APP_KEY=base64:abc\n"),
        ]);
        let m = tar_member(&tar[..], "source/.env", 1024).unwrap().unwrap();
        assert_eq!(m.name, "./source/.env");
        assert_eq!(m.mode, 0o600);
        assert_eq!(m.data, b"APP_KEY=base64:abc\n");
        assert!(!format!("{m:?}").contains("base64:abc"));
        assert!(tar_member(&tar[..], "ssh/keys", 1024).unwrap().is_none());
        assert!(tar_member(&tar[..], "source/.env", 4).is_err());
        assert_eq!(
            tar_member(&b"not a tar at all"[..], "x", 10)
                .unwrap_err()
                .kind(),
            ErrorKind::Corrupt
        );
        let mut bad = tar.clone();
        bad[0] ^= 1;
        assert_eq!(
            tar_member(&bad[..], "x", 10).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            tar_member(&tar[..700], "source/.env", 1024)
                .unwrap_err()
                .kind(),
            ErrorKind::Corrupt
        );
    }
}
