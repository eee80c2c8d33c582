//! Links `kastell-mcp` with its relative relocations packed (`-z
//! pack-relative-relocs`, DT_RELR) on Linux.
//!
//! `kastell-mcp` is a position-independent executable: at start the
//! dynamic loader writes its load address into about 33,000 pointers, read
//! from `.rela.dyn` (24 bytes each, 0.8 MB, all of it read on every start
//! and held in the server's resident memory; BENCHMARKS.md §1b). Packed,
//! the same relocations take a few kilobytes. The executable stays
//! position-independent (its address is still randomised).
//!
//! The flag is passed only where it works: an empty program is linked with
//! it, with this rustc, its flags and linker (lld, the Rust default on
//! x86_64 Linux, and GNU ld 2.38 and mold take it), and run, because a C
//! library older than glibc 2.36 does not apply packed relocations. A
//! build for another machine (cross-compiling) cannot run it, so it is
//! linked as before, as is any build where the probe fails.

// A build script speaks to cargo on stdout.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The link argument that packs relative relocations.
const RELR: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    if linker_takes(&[RELR.to_owned()]) {
        println!("cargo:rustc-link-arg-bin=kastell-mcp={RELR}");
    }
}

/// The environment variable `name`, empty when unset.
fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Whether this machine is the target and an empty program links, with
/// this rustc, its flags and linker and the link arguments `args`, and
/// runs.
fn linker_takes(args: &[String]) -> bool {
    if env("HOST") != env("TARGET") {
        return false;
    }
    let out = PathBuf::from(env("OUT_DIR"));
    let source = out.join("link_probe.rs");
    let program = out.join("link_probe");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    rustc
        .arg("--target")
        .arg(env("TARGET"))
        .arg("-o")
        .arg(&program)
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
    if !rustc.output().is_ok_and(|o| o.status.success()) {
        return false;
    }
    Command::new(&program)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `linker=PATH`.
fn linker_arg(linker: &Path) -> String {
    format!("linker={}", linker.display())
}
