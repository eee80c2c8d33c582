#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::smaps::{Mapping, read_only_file_mappings};
use super::*;

const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 fe:00 1234 /usr/bin/kastell-mcp
Size:               1024 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
55d0c0100000-55d0c1000000 r-xp 00100000 fe:00 1234 /usr/bin/kastell-mcp
Anonymous:             0 kB
55d0c1000000-55d0c1080000 r--p 01000000 fe:00 1234 /usr/bin/kastell-mcp
Anonymous:           512 kB
55d0c1080000-55d0c1100000 rw-p 01080000 fe:00 1234 /usr/bin/kastell-mcp
Anonymous:            20 kB
55d0c2000000-55d0c2100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           128 kB
7f0000000000-7f0000010000 r--s 00000000 fe:00 99 /var/lib/shared.db
Anonymous:             0 kB
7f0000010000-7f0000020000 r-xp 00000000 fe:00 77 /opt/my apps/libx.so
7f0000020000-7f0000030000 ---p 00010000 fe:00 77 /opt/my apps/libx.so
7f0000030000-7f0000040000 r--p 00000000 00:00 0
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
not a mapping line
7f0000050000-7f0000040000 r--p 00000000 fe:00 5 /lib/backwards.so
Anonymous:             0 kB
";

#[test]
fn only_read_only_private_file_mappings_are_chosen_with_their_own_pages() {
    let m = |start, len, anonymous_kib| Mapping {
        start,
        len,
        anonymous_kib,
    };
    assert_eq!(
        read_only_file_mappings(SMAPS),
        vec![
            m(0x55d0_c000_0000, 0x10_0000, 0),
            m(0x55d0_c010_0000, 0xf0_0000, 0),
            // RELRO: written by the loader, then made read-only.
            m(0x55d0_c100_0000, 0x8_0000, 512),
            // No Anonymous line: not known to be clean.
            m(0x7f00_0001_0000, 0x1_0000, u64::MAX),
        ],
        "the executable's read-only data, code and RELRO and the library's code (a \
         path with a space); not writable, shared, inaccessible, anonymous or \
         special mappings, nor lines that do not parse"
    );
}

/// The running kernel's (major, minor) version.
fn kernel() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The `(VmFlags, Rss in KiB)` of the mapping of this process that
/// starts at `start`.
fn mapping(start: u64) -> (String, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let head = format!("{start:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
    assert!(lines.next().is_some(), "no mapping at {start:x}");
    let (mut flags, mut rss) = (String::new(), 0);
    for line in lines {
        if line
            .split_whitespace()
            .next()
            .is_some_and(|f| !f.ends_with(':'))
        {
            break;
        }
        if let Some(v) = line.strip_prefix("VmFlags:") {
            flags = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Rss:") {
            rss = v.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    (flags, rss)
}

/// Whether this kernel is new enough to register (asynchronous
/// write-protect came in Linux 6.7), unless its userfaultfd is refused by
/// policy here (a seccomp filter or a sysctl), which the outcome names.
fn expect_registration(outcome: &Outcome) -> bool {
    if kernel() < (6, 7) {
        return false;
    }
    if let Some(Unavailable {
        reason: "userfaultfd refused",
        errno,
    }) = outcome.unavailable
    {
        eprintln!("userfaultfd is refused here ({errno:?}): nothing to check");
        return false;
    }
    true
}

#[test]
fn the_constructor_registered_this_process_read_only_mappings_and_nothing_else() {
    // The constructor ran before the tests did.
    let first = outcome().expect("the constructor ran");
    let outcome = map_touched_pages_only();
    assert!(std::ptr::eq(first, outcome), "once");
    assert!(outcome.released > 0, "{outcome:?}");
    if !expect_registration(outcome) {
        assert_eq!(outcome.registered, 0, "{outcome:?}");
        return;
    }
    assert!(
        outcome.registered > 0 && outcome.refused == 0 && outcome.unavailable.is_none(),
        "Linux {:?} registers: {outcome:?}",
        kernel()
    );
    // This test binary's code and its writable mappings, which the loader
    // made before the constructor ran (other tests may map files since:
    // a panic's backtrace maps the binary again, read-only). One reading
    // of smaps: the other tests map and unmap files meanwhile.
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let all = flags_of_every_mapping();
    let registered = |flags: &str| flags.split(' ').any(|f| f == "uw");
    let code: Vec<&(String, String)> = all
        .iter()
        .filter(|(head, _)| head.ends_with(exe) && head.contains(" r-xp "))
        .collect();
    assert!(!code.is_empty(), "{all:?}");
    for (head, flags) in code {
        assert!(registered(flags), "{head}: {flags}");
    }
    for (head, flags) in all.iter().filter(|(head, _)| head.contains(" rw-p ")) {
        assert!(!registered(flags), "{head}: {flags}");
    }
}

/// Every mapping of this process, as its smaps header line and its
/// `VmFlags`, from one reading of `/proc/self/smaps`.
fn flags_of_every_mapping() -> Vec<(String, String)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in smaps.lines() {
        let is_field = line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.ends_with(':'));
        if !is_field {
            out.push((line.to_owned(), String::new()));
        } else if let (Some(v), Some(last)) = (line.strip_prefix("VmFlags:"), out.last_mut()) {
            last.1 = v.trim().to_owned();
        }
    }
    out
}

/// A file of 1 MiB of `7`s, written just now (so all its pages are in the
/// page cache, where fault-around could map every one of them), on disk
/// next to this test binary like a binary's, and removed already.
fn file() -> std::fs::File {
    use std::io::Write;
    let dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("kastell-pages-{}-{}", std::process::id(), unique()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    file.write_all(&vec![7u8; 1 << 20]).unwrap();
    file.flush().unwrap();
    file
}

/// A number unlikely to repeat within this process.
fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A private mapping of the 1 MiB `file` with `prot`.
#[allow(unsafe_code)]
fn map(file: &std::fs::File, prot: libc::c_int) -> *mut u8 {
    use std::os::fd::AsRawFd;
    // SAFETY: a new private mapping of an open file; the tests read and
    // write it only within its length and unmap it with `unmap`.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            1 << 20,
            prot,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p.cast()
}

#[allow(unsafe_code)]
fn unmap(p: *mut u8) {
    // SAFETY: a mapping made by `map`, no longer used.
    unsafe { libc::munmap(p.cast(), 1 << 20) };
}

/// The byte at `offset` of the mapping at `p`.
#[allow(unsafe_code)]
fn read(p: *mut u8, offset: usize) -> u8 {
    assert!(offset < 1 << 20);
    // SAFETY: within the 1 MiB mapping.
    unsafe { std::ptr::read_volatile(p.add(offset)) }
}

/// The page size, in KiB.
#[allow(unsafe_code)]
fn page_kib() -> u64 {
    // SAFETY: sysconf takes a constant and returns a number.
    let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(bytes).unwrap() / 1024
}

#[test]
fn a_registered_mapping_maps_only_the_page_touched() {
    let file = file();
    let (registered, plain) = (map(&file, libc::PROT_READ), map(&file, libc::PROT_READ));
    let (outcome, fd) = sys::register(&[Mapping {
        start: registered as u64,
        len: 1 << 20,
        anonymous_kib: 0,
    }]);
    if !expect_registration(&outcome) {
        return;
    }
    assert_eq!((outcome.registered, outcome.refused), (1, 0), "{outcome:?}");
    assert!(fd.is_some());
    assert_eq!(
        (read(registered, 512 << 10), read(plain, 512 << 10)),
        (7, 7)
    );
    let (flags, one) = mapping(registered as u64);
    let (_, around) = mapping(plain as u64);
    eprintln!("touching one page mapped {one} KiB registered, {around} KiB not");
    assert!(flags.split(' ').any(|f| f == "uw"), "{flags}");
    assert_eq!(one, page_kib(), "registered: the touched page alone");
    assert!(around >= one);
    unmap(registered);
    unmap(plain);
}

#[test]
#[allow(unsafe_code)]
fn released_pages_come_back_the_same_and_pages_of_its_own_are_kept() {
    let file = file();
    let clean = map(&file, libc::PROT_READ);
    // Like RELRO: written (copied on write), then made read-only.
    let written = map(&file, libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: within the writable 1 MiB mapping.
    unsafe { std::ptr::write_volatile(written.add(4096), 9) };
    // SAFETY: the whole mapping made by `map`.
    assert_eq!(
        unsafe { libc::mprotect(written.cast(), 1 << 20, libc::PROT_READ) },
        0
    );
    assert_eq!((read(clean, 4096), read(written, 4096)), (7, 9));
    let (_, clean_before) = mapping(clean as u64);
    assert!(clean_before >= page_kib());

    // This process's real smaps, for these two mappings.
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let ours: Vec<Mapping> = read_only_file_mappings(&smaps)
        .into_iter()
        .filter(|m| m.start == clean as u64 || m.start == written as u64)
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(
        ours.iter()
            .any(|m| m.start == written as u64 && m.anonymous_kib > 0)
    );
    assert_eq!(sys::release(&ours), 1, "only the clean one");

    assert_eq!(mapping(clean as u64).1, 0, "its pages let go");
    assert!(mapping(written as u64).1 > 0, "its pages kept");
    assert_eq!(read(written, 4096), 9, "what was written is still there");
    assert_eq!(read(clean, 4096), 7, "the file's bytes come back");
    assert_eq!(read(clean, (1 << 20) - 1), 7);
    unmap(clean);
    unmap(written);
}
