//! The real `kastell-mcp` maps only the pages it touches (BENCHMARKS.md
//! §1b): its read-only file mappings, its own code first, are registered
//! with a userfaultfd in write-protect mode (`uw` in `/proc/PID/smaps`),
//! which turns the kernel's fault-around off for them, and the descriptor
//! stays open; its writable memory is not registered. Where the kernel
//! cannot (before Linux 6.7) or a seccomp filter may refuse, it runs as
//! before. A check that the mechanism is in place, not a memory figure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp::common as mcp_common;

/// Whether kastell-mcp started here must have registered: Linux 6.7 or
/// later (asynchronous write-protect) and no seccomp filter that might
/// refuse userfaultfd (`Seccomp: 0`, which its child inherits).
fn registration_expected() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut version = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let kernel = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let filtered = status
        .lines()
        .any(|l| l.starts_with("Seccomp:") && l.trim_end() != "Seccomp:\t0");
    if filtered {
        eprintln!("a seccomp filter may refuse userfaultfd here: nothing to check");
    }
    kernel >= (6, 7) && !filtered
}

/// Each mapping of `smaps`: (the header line, its VmFlags).
fn mappings(smaps: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(last) = out.last_mut() {
                last.1 = flags.trim().to_owned();
            }
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            out.push((line.to_owned(), String::new()));
        }
    }
    out
}

#[tokio::test]
async fn kastell_mcp_registers_its_read_only_mappings_and_nothing_writable() {
    let tmp = tempfile::tempdir().unwrap();
    let mcp = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;
    // It answers as ever.
    let tools = mcp.client.list_all_tools().await.unwrap();
    assert!(tools.len() > 1);
    let pid = mcp.pid.expect("kastell-mcp's pid");
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_kastell-mcp")).unwrap();
    let exe = exe.to_str().unwrap();
    let all = mappings(&smaps);
    let own: Vec<&(String, String)> = all.iter().filter(|(h, _)| h.ends_with(exe)).collect();
    let registered = |flags: &str| flags.split(' ').any(|f| f == "uw");
    let libraries_registered = all
        .iter()
        .any(|(h, flags)| h.contains(" r-xp ") && h.contains(".so") && registered(flags));
    let kept = fds.iter().any(|f| f.contains("userfaultfd"));

    if !registration_expected() {
        assert!(own.iter().any(|(h, _)| h.contains(" r-xp ")), "{smaps}");
        return;
    }
    assert!(kept, "the userfaultfd stays open: {fds:?}");
    assert!(own.iter().any(|(h, _)| h.contains(" r-xp ")), "{smaps}");
    for (header, flags) in &own {
        let perms = header.split_whitespace().nth(1).unwrap();
        let read_only = perms.starts_with("r-") && perms.ends_with('p');
        assert_eq!(
            registered(flags),
            read_only,
            "{header}: {flags} (read-only mappings registered, writable ones not)"
        );
    }
    assert!(
        libraries_registered,
        "the shared libraries' code too: {smaps}"
    );
    for (header, flags) in &all {
        if header
            .split_whitespace()
            .nth(1)
            .is_some_and(|p| p.contains('w'))
        {
            assert!(!registered(flags), "{header}: {flags}");
        }
    }
}
