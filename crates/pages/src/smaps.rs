//! The read-only private file mappings of a process, from its
//! `/proc/self/smaps`.

/// One read-only private file mapping, from `/proc/self/smaps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// Its first address.
    pub(crate) start: u64,
    /// Its length in bytes.
    pub(crate) len: u64,
    /// KiB of pages the process holds of its own there (written, copied
    /// on write): 0 when every page is the file's.
    pub(crate) anonymous_kib: u64,
}

/// The read-only private file mappings of `smaps` (the text of
/// `/proc/self/smaps`, or of `/proc/self/maps`, which has no
/// `Anonymous:` lines: then none counts as clean). Writable, shared,
/// inaccessible, anonymous and special mappings (`[vdso]`) are left out;
/// so are lines that do not parse.
pub(crate) fn read_only_file_mappings(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if first.ends_with(':') {
            if let (Some(mapping), "Anonymous:") = (current.as_mut(), first) {
                let kib = fields.next().and_then(|v| v.parse().ok());
                mapping.anonymous_kib = kib.unwrap_or(u64::MAX);
            }
            continue;
        }
        out.extend(current.take());
        current = header(first, fields);
    }
    out.extend(current);
    out
}

/// The mapping a `/proc/self/smaps` header line describes (`range`, then
/// the rest of the line's `fields`), if it is a read-only private file
/// mapping; its anonymous pages unknown until its `Anonymous:` line.
fn header<'a>(range: &str, mut fields: impl Iterator<Item = &'a str>) -> Option<Mapping> {
    let perms = fields.next()?.as_bytes();
    // offset, device, inode, then the path (which may hold spaces).
    let path = fields.nth(3)?;
    let read_only_private =
        perms.first() == Some(&b'r') && perms.get(1) == Some(&b'-') && perms.get(3) == Some(&b'p');
    if !read_only_private || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    // `then`, not `then_some`: `end - start` must not be computed first.
    (end > start).then(|| Mapping {
        start,
        len: end - start,
        anonymous_kib: u64::MAX,
    })
}
