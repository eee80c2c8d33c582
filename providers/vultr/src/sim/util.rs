//! Small helpers of the simulator: UUIDs, dates and opaque cursors.

pub(crate) use crate::model::is_uuid;

/// A deterministic version-4-shaped UUID for (`seed`, `n`).
pub(crate) fn uuid(seed: u64, n: u64) -> String {
    let hi = mix(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let lo = mix(hi ^ seed.rotate_left(17) ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0x0fff,
        0x8000 | (lo >> 48) & 0x3fff,
        lo & 0xffff_ffff_ffff
    )
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Virtual seconds as an ISO-8601 date, counted from 2026-08-01T00:00:00Z.
pub(crate) fn iso_at(virtual_secs: f64) -> String {
    // Days from 1970-01-01 to 2026-08-01.
    const START_DAYS: i64 = 20_666;
    let secs = virtual_secs.max(0.0) as i64;
    format!(
        "{}+00:00",
        kastell_core::time::utc_datetime(START_DAYS * 86_400 + secs)
    )
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The opaque cursor for the page starting at `offset`, as Vultr writes
/// them: base64 of `next__<offset>`.
pub(crate) fn cursor_for(offset: usize) -> String {
    let text = format!("next__{offset}");
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The offset in a cursor made by [`cursor_for`]; `None` for anything else.
pub(crate) fn offset_of(cursor: &str) -> Option<usize> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in cursor.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = bits << 6 | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count & 0xff) as u8);
        }
    }
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("next__")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_distinct_and_well_formed() {
        let a = uuid(1, 0);
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, uuid(1, 1));
        assert_ne!(a, uuid(2, 0));
        assert_eq!(a, uuid(1, 0));
    }

    #[test]
    fn cursors_look_like_vultr_and_round_trip() {
        assert_eq!(cursor_for(100), "bmV4dF9fMTAw");
        for offset in [0, 1, 99, 500, 12_345] {
            assert_eq!(offset_of(&cursor_for(offset)), Some(offset));
        }
        assert_eq!(offset_of("garbage!"), None);
        assert_eq!(offset_of("bm90aGluZw=="), None);
    }

    #[test]
    fn dates() {
        assert_eq!(iso_at(0.0), "2026-08-01T00:00:00+00:00");
        assert_eq!(
            iso_at(86_400.0 * 31.0 + 3_661.0),
            "2026-09-01T01:01:01+00:00"
        );
    }
}
