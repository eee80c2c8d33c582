//! Under `umask 000`, `kastell-mcp --sandbox` makes nothing another user
//! could write: no file or directory of its sshd (keys, config, log, pid
//! file, owner file), its fake hosts or its store is group- or
//! other-writable. (A writable owner file would let another user name a
//! dead process in it and have the next start sweep a live sandbox.)
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::signals::{Running, Scratch, initialized};

/// Every entry under `dir` (not following links), with its mode.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u32)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // removed meanwhile (a shim's temporary file)
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        out.push((path.clone(), meta.mode() & 0o7777));
        if meta.is_dir() {
            walk(&path, out);
        }
    }
}

#[test]
fn under_umask_000_the_sandbox_makes_nothing_others_can_write() {
    let scratch = Scratch::new();
    let mut run = initialized(Running::spawn(scratch.command(
        "/bin/sh",
        &[
            "-c",
            r#"umask 000 && exec "$0" "$@""#,
            env!("CARGO_BIN_EXE_kastell-mcp"),
            "--sandbox",
        ],
        &[],
    )));
    // A call, so the hosts' shims have run too.
    run.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"server_info","arguments":{"action":"health","server":"manual-web"}}}"#,
    );
    run.wait_for(r#""id":2"#);
    let seen = scratch.sandbox_processes();

    let mut entries = Vec::new();
    walk(&scratch.tmp(), &mut entries);
    let names: Vec<String> = entries
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for made in ["kastell-sshd-", "kastell-hosts-", "kastell-mcp-sandbox-"] {
        assert!(
            names.iter().any(|n| n.starts_with(made)),
            "no {made}* directory: {names:?}"
        );
    }
    for made in [
        ".kastell-owner",
        "sshd.log",
        "sshd.pid",
        "client_ed25519.pub",
        "log",
    ] {
        assert!(names.iter().any(|n| n == made), "no {made}: {names:?}");
    }
    let writable: Vec<String> = entries
        .iter()
        .filter(|(_, mode)| mode & 0o022 != 0)
        .map(|(path, mode)| format!("{} {mode:o}", path.display()))
        .collect();
    assert!(
        writable.is_empty(),
        "writable by group or others:\n{}",
        writable.join("\n")
    );

    let (status, stderr) = run.finish();
    assert!(status.success(), "{status:?}\n{stderr}");
    scratch.assert_nothing_left(&seen);
}
