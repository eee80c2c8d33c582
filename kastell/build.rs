//! Links `kastell-mcp` with the code it runs to answer `initialize` and
//! `tools/list` placed together (release builds on Linux).
//!
//! That code is about 1 MB of a binary of about 18 MB, spread over all of
//! it: each first touch of a page maps the file pages around it (the
//! kernel's fault-around, whole large folios on recent kernels), so the
//! spread, not the code run, set the server's resident memory
//! (BENCHMARKS.md §1b). `link/kastell-mcp.order` lists those functions
//! (their symbol names, as `bench/scripts/mcp_order.py` records them with
//! callgrind); the linker places them first, in that order. Names that
//! no longer exist are skipped, so a stale list costs memory, never a
//! build. Used only where this build's linker takes
//! `--symbol-ordering-file` (lld, the Rust default on x86_64 Linux, and
//! mold; GNU ld does not): an empty program is linked with it first.

// A build script speaks to cargo on stdout.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let order = PathBuf::from(env("CARGO_MANIFEST_DIR")).join("link/kastell-mcp.order");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-changed=build.rs");
    if env("CARGO_CFG_TARGET_OS") != "linux" || env("PROFILE") != "release" || !order.is_file() {
        return;
    }
    let args = [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ];
    if linker_takes(&args) {
        for arg in args {
            println!("cargo:rustc-link-arg-bin=kastell-mcp={arg}");
        }
    }
}

/// The environment variable `name`, empty when unset.
fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Whether an empty program links for this target, with this rustc, its
/// flags and linker, and the link arguments `args`.
fn linker_takes(args: &[String]) -> bool {
    let out = PathBuf::from(env("OUT_DIR"));
    let source = out.join("ordering_probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    rustc
        .arg("--target")
        .arg(env("TARGET"))
        .arg("-o")
        .arg(out.join("ordering_probe"))
        .arg(&source);
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        rustc.arg("-C").arg(linker_arg(Path::new(&linker)));
    }
    for flag in env("CARGO_ENCODED_RUSTFLAGS")
        .split('\x1f')
        .filter(|f| !f.is_empty())
    {
        rustc.arg(flag);
    }
    for arg in args {
        rustc.arg("-C").arg(format!("link-arg={arg}"));
    }
    rustc.output().is_ok_and(|o| o.status.success())
}

/// `linker=PATH`.
fn linker_arg(linker: &Path) -> String {
    format!("linker={}", linker.display())
}
