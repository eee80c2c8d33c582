//! restic's content-defined chunking, fed from a stream of unknown length.
//!
//! A chunk ends where the 64-byte Rabin fingerprint of the bytes before
//! the cut (modulo the repository's polynomial) has its low bits (as many
//! as the average chunk size's power of two) all zero, but never before
//! the minimum size and always at the maximum size. The fingerprint
//! starts afresh at each chunk, its window filled with the last 64 bytes
//! of the chunk's minimum. The same bytes therefore cut at the same
//! places as restic's and rustic_core's chunkers, so content written here
//! and there deduplicates.
//!
//! The fingerprint is rustic_cdc's Rabin64 (its tables), rolled here with
//! the state in locals and the window in a fixed array: this loop runs
//! once per byte of every backup, on the one thread that cuts.

use kastell_core::{Error, ErrorKind, Result};
use rustic_cdc::{Polynom, Rabin64};

/// Bytes in the fingerprint's window (restic's: 2^6).
const WINDOW_BITS: u32 = 6;
const WINDOW: usize = 1 << WINDOW_BITS;

/// The chunk sizes of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkSizes {
    /// The average (a power of two).
    pub average: usize,
    /// The minimum, at least the fingerprint's window.
    pub min: usize,
    /// The maximum.
    pub max: usize,
}

impl ChunkSizes {
    /// Refuses sizes restic's chunker cannot use.
    pub(crate) fn checked(self) -> Result<Self> {
        let usable = self.average.is_power_of_two()
            && self.min >= WINDOW
            && self.min <= self.average
            && self.average <= self.max;
        if usable {
            Ok(self)
        } else {
            Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the repository's chunk sizes ({} min, {} average, {} max) are not ones \
                     restic's chunker uses",
                    self.min, self.average, self.max
                ),
            ))
        }
    }
}

/// The rolling fingerprint: Rabin64 over a 64-byte window.
struct Rolling {
    out_table: Box<[u64; 256]>,
    mod_table: Box<[u64; 256]>,
    shift: u32,
    window: [u8; WINDOW],
    at: usize,
    hash: u64,
}

impl Rolling {
    fn new(poly: u64) -> Self {
        Self {
            out_table: Box::new(Rabin64::calculate_out_table(WINDOW, &poly)),
            mod_table: Box::new(Rabin64::calculate_mod_table(&poly)),
            // A polynomial of degree 53 (restic's are), so at least 8.
            shift: u32::try_from(poly.degree() - 8).unwrap_or(0),
            window: [0; WINDOW],
            at: 0,
            hash: 0,
        }
    }

    /// Starts afresh from `bytes` (the last of a chunk's minimum): as
    /// rustic_cdc's `reset_and_prefill_window`, the first 63 go into the
    /// window and the hash, the window's last byte is zero.
    fn prefill(&mut self, bytes: &[u8]) {
        self.hash = 0;
        self.window = [0; WINDOW];
        self.at = 0;
        for &byte in bytes.iter().take(WINDOW - 1) {
            self.window[self.at] = byte;
            let index = (self.hash >> self.shift) & 0xff;
            self.hash = (self.hash << 8) | u64::from(byte);
            self.hash ^= self.mod_table[index as usize];
            self.at = (self.at + 1) & (WINDOW - 1);
        }
        self.window[self.at] = 0;
    }

    /// Rolls over `data` until the hash has its `mask` bits all zero
    /// before a byte (then returns how many bytes it took, and that it
    /// found a cut) or `data` ends.
    fn roll(&mut self, data: &[u8], mask: u64) -> (usize, bool) {
        let (out_table, mod_table) = (&*self.out_table, &*self.mod_table);
        let shift = self.shift;
        let mut hash = self.hash;
        let mut at = self.at;
        let mut taken = 0;
        let mut cut = false;
        for &byte in data {
            if hash & mask == 0 {
                cut = true;
                break;
            }
            let out = self.window[at];
            hash ^= out_table[usize::from(out)];
            self.window[at] = byte;
            let index = (hash >> shift) & 0xff;
            hash = (hash << 8) | u64::from(byte);
            hash ^= mod_table[index as usize];
            at = (at + 1) & (WINDOW - 1);
            taken += 1;
        }
        self.hash = hash;
        self.at = at;
        (taken, cut)
    }
}

/// Cuts a stream, given in pieces, into chunks.
pub(crate) struct Chunker {
    rabin: Rolling,
    mask: u64,
    sizes: ChunkSizes,
    current: Vec<u8>,
}

impl Chunker {
    /// A chunker for polynomial `poly` and `sizes` (checked).
    pub(crate) fn new(poly: u64, sizes: ChunkSizes) -> Self {
        Self {
            rabin: Rolling::new(poly),
            mask: sizes.average as u64 - 1,
            sizes,
            current: Vec::with_capacity(sizes.max.min(16 << 20)),
        }
    }

    /// Feeds the next `data` of the stream, handing each chunk it
    /// completes to `emit` in order. A failure of `emit` stops and is
    /// returned.
    pub(crate) fn feed<E>(
        &mut self,
        mut data: &[u8],
        emit: &mut impl FnMut(Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        while !data.is_empty() {
            if self.current.len() < self.sizes.min {
                let take = (self.sizes.min - self.current.len()).min(data.len());
                self.current.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.current.len() < self.sizes.min {
                    return Ok(());
                }
                let tail = self.current.len() - WINDOW;
                self.rabin.prefill(&self.current[tail..]);
            }
            // The cut is decided before each further byte is taken: where
            // the hash says, or at the maximum size.
            let room = self.sizes.max.saturating_sub(self.current.len());
            let (taken, found) = self.rabin.roll(&data[..room.min(data.len())], self.mask);
            let cut = found || taken == room;
            self.current.extend_from_slice(&data[..taken]);
            data = &data[taken..];
            if cut {
                emit(self.take())?;
            }
        }
        // The stream may end here: a cut at this very byte is decided now,
        // as the next piece would decide it before its first byte.
        let at_cut = self.current.len() >= self.sizes.min
            && (self.current.len() >= self.sizes.max || self.rabin.hash & self.mask == 0);
        if at_cut {
            emit(self.take())?;
        }
        Ok(())
    }

    /// The last chunk, once the stream has ended (`None` when nothing is
    /// left).
    pub(crate) fn finish(mut self) -> Option<Vec<u8>> {
        (!self.current.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        let capacity = self.current.capacity();
        std::mem::replace(&mut self.current, Vec::with_capacity(capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLY: u64 = 0x003D_A335_8B4D_C173;

    fn sizes() -> ChunkSizes {
        ChunkSizes {
            average: 1 << 12,
            min: 1 << 10,
            max: 1 << 14,
        }
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn cut(data: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut chunker = Chunker::new(POLY, sizes());
        let mut chunks = Vec::new();
        for part in data.chunks(piece) {
            chunker
                .feed(part, &mut |c| {
                    chunks.push(c);
                    Ok::<_, ()>(())
                })
                .unwrap();
        }
        chunks.extend(chunker.finish());
        chunks
    }

    #[test]
    fn cuts_do_not_depend_on_how_the_stream_is_split() {
        let data = pseudo_random(300_000, 7);
        let whole = cut(&data, data.len());
        assert!(whole.len() > 20, "{} chunks", whole.len());
        assert_eq!(whole.concat(), data);
        for piece in [1, 63, 64, 1000, 4096, 65_537] {
            assert_eq!(cut(&data, piece), whole, "pieces of {piece}");
        }
        for chunk in &whole[..whole.len() - 1] {
            assert!(chunk.len() >= sizes().min && chunk.len() <= sizes().max);
        }
    }

    /// The cuts rustic_cdc's own rolling hash gives, byte by byte.
    fn reference(data: &[u8]) -> Vec<Vec<u8>> {
        use rustic_cdc::RollingHash64;
        let sizes = sizes();
        let mask = sizes.average as u64 - 1;
        let mut rabin = Rabin64::new_with_polynom(WINDOW_BITS, &POLY);
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let rest = &data[start..];
            if rest.len() <= sizes.min {
                chunks.push(rest.to_vec());
                break;
            }
            rabin.reset_and_prefill_window(&mut rest[sizes.min - WINDOW..].iter().copied());
            let mut end = sizes.min;
            while end < rest.len() && end < sizes.max && rabin.hash & mask != 0 {
                rabin.slide(rest[end]);
                end += 1;
            }
            chunks.push(rest[..end].to_vec());
            start += end;
        }
        chunks
    }

    #[test]
    fn cuts_are_rustic_cdcs() {
        for seed in [1, 2, 3] {
            let data = pseudo_random(200_000, seed);
            assert_eq!(cut(&data, 4096), reference(&data), "seed {seed}");
        }
        // Text, which hits the maximum size more often with these sizes.
        let text = b"id\tname\tshipped\n".repeat(20_000);
        assert_eq!(cut(&text, 1000), reference(&text));
    }

    #[test]
    fn a_change_moves_only_the_nearby_cuts() {
        let data = pseudo_random(300_000, 9);
        let mut changed = data.clone();
        changed[150_000] ^= 0xff;
        let a = cut(&data, 4096);
        let b = cut(&changed, 4096);
        let same = a.iter().filter(|c| b.contains(c)).count();
        assert!(same + 3 >= a.len(), "{same} of {} chunks kept", a.len());
    }

    #[test]
    fn zeros_cut_at_the_minimum_and_bad_sizes_are_refused() {
        // The fingerprint of zeros is zero: every chunk is a minimum one.
        let chunks = cut(&[0u8; 5000], 777);
        assert_eq!(chunks[0].len(), sizes().min);
        assert!(cut(&[], 10).is_empty());
        for bad in [
            ChunkSizes {
                average: 3000,
                min: 1024,
                max: 8192,
            },
            ChunkSizes {
                average: 4096,
                min: 32,
                max: 8192,
            },
            ChunkSizes {
                average: 4096,
                min: 1024,
                max: 2048,
            },
        ] {
            assert!(bad.checked().is_err(), "{bad:?}");
        }
    }
}
