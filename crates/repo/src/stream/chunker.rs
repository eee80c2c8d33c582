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

use kastell_core::{Error, ErrorKind, Result};
use rustic_cdc::{Rabin64, RollingHash64};

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

/// Cuts a stream, given in pieces, into chunks.
pub(crate) struct Chunker {
    rabin: Rabin64,
    mask: u64,
    sizes: ChunkSizes,
    current: Vec<u8>,
}

impl Chunker {
    /// A chunker for polynomial `poly` and `sizes` (checked).
    pub(crate) fn new(poly: u64, sizes: ChunkSizes) -> Self {
        Self {
            rabin: Rabin64::new_with_polynom(WINDOW_BITS, &poly),
            mask: sizes.average as u64 - 1,
            sizes,
            current: Vec::with_capacity(sizes.min),
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
                self.rabin
                    .reset_and_prefill_window(&mut self.current[tail..].iter().copied());
            }
            // The cut is decided before each further byte is taken.
            let mut taken = 0;
            let mut cut = false;
            for &byte in data {
                if self.current.len() + taken >= self.sizes.max || self.rabin.hash & self.mask == 0
                {
                    cut = true;
                    break;
                }
                self.rabin.slide(byte);
                taken += 1;
            }
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
        std::mem::replace(&mut self.current, Vec::with_capacity(self.sizes.min))
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
