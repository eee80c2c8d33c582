//! Keeps a process's resident memory to the pages of code and read-only
//! data it really touches.
//!
//! The first touch of a page of a mapped file (the executable, a shared
//! library) makes Linux map not only that page but the cached pages around
//! it too ("fault-around", 64 KiB by default), and every one of them counts
//! in the process's resident set. `kastell-mcp` runs about 1 MB of code to
//! answer `initialize` and `tools/list`, spread over an 18 MB `.text`, so
//! fault-around, not the code it ran, set its memory (BENCHMARKS.md §1b).
//! Placing that code together with a linker ordering list worked until the
//! next merge renamed the functions; this needs no list, so nothing goes
//! stale.
//!
//! [`map_touched_pages_only`] does two things to every read-only private
//! file mapping of the process:
//!
//! - **registers it** with a userfaultfd in write-protect mode, which the
//!   kernel skips fault-around for. With the asynchronous write-protect
//!   feature (Linux 6.7) nothing has to answer that descriptor: the kernel
//!   resolves write faults itself, and no write happens in a read-only
//!   mapping anyway. The descriptor (user-mode faults only, which
//!   unprivileged processes may open) stays open, close-on-exec, for the
//!   life of the process; a forked child's mappings are unregistered by
//!   the kernel.
//! - **lets go of the pages mapped so far** (`MADV_DONTNEED`) where the
//!   mapping holds no page of its own (`Anonymous: 0` in
//!   `/proc/self/smaps`): every page there is the file's, unchanged, and
//!   the next touch maps it again, the same. That drops what the dynamic
//!   loader read to relocate the process (and mapped around it) and never
//!   needs again. Mappings written by the loader and then made read-only
//!   (RELRO) hold pages of their own and are left alone.
//!
//! A binary that links this crate runs it as its first constructor,
//! before the link-time registrations (`inventory`) that touch code all
//! over the binary; `main` calls it again, which does nothing more but
//! makes sure the crate is linked.
//!
//! It refuses nothing and changes nothing else: where the kernel is older,
//! a seccomp filter or a sysctl refuses userfaultfd, `/proc` is not
//! mounted or the platform is not Linux, the process runs as it would
//! without it, and [`outcome`] says what was done.

use std::sync::OnceLock;

/// What [`map_touched_pages_only`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Read-only file mappings with fault-around off.
    pub registered: usize,
    /// Read-only file mappings the kernel refused to register.
    pub refused: usize,
    /// Read-only file mappings whose pages mapped so far were let go.
    pub released: usize,
    /// Why nothing was registered, when nothing could be.
    pub unavailable: Option<Unavailable>,
}

/// Why fault-around could not be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    /// What was missing or refused.
    pub reason: &'static str,
    /// The error number the system returned, if one did.
    pub errno: Option<i32>,
}

/// The outcome of the first call.
static DONE: OnceLock<Outcome> = OnceLock::new();

/// Turns fault-around off for every read-only private file mapping of
/// this process (the executable's code and read-only data, the shared
/// libraries') and lets go of their clean pages mapped so far, once:
/// later calls return the first call's outcome. Mappings made later (a
/// library loaded afterwards) are not covered. Never fails: what could
/// not be done is in the [`Outcome`].
pub fn map_touched_pages_only() -> &'static Outcome {
    DONE.get_or_init(sys::run)
}

/// The outcome of [`map_touched_pages_only`], if it ran.
pub fn outcome() -> Option<&'static Outcome> {
    DONE.get()
}

/// The first constructor of the executable that links this crate: an
/// `.init_array` entry of priority 101 (the first one programs may use),
/// which runs before the unprioritised entries of the binary's crates.
#[cfg(target_os = "linux")]
#[used]
#[allow(unsafe_code)]
// SAFETY: the dynamic loader calls each `.init_array` entry once, before
// `main`, with (argc, argv, envp), which an `extern "C" fn()` ignores;
// `first` touches no state of other constructors, never unwinds (see
// below) and only reads /proc and makes the system calls of `sys`.
#[unsafe(link_section = ".init_array.00101")]
static FIRST: extern "C" fn() = first;

/// [`FIRST`]'s function. Nothing in [`sys`] panics (no indexing, no
/// unwrap), so nothing unwinds out of this `extern "C"` function.
#[cfg(target_os = "linux")]
extern "C" fn first() {
    let _ = map_touched_pages_only();
}

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    )
))]
mod smaps;
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    )
))]
mod sys;

#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    )
)))]
mod sys {
    use super::{Outcome, Unavailable};

    /// Elsewhere there is nothing to do.
    pub(super) fn run() -> Outcome {
        Outcome {
            unavailable: Some(Unavailable {
                reason: "not Linux on x86_64, aarch64, riscv64 or loongarch64",
                errno: None,
            }),
            ..Outcome::default()
        }
    }
}

#[cfg(all(
    test,
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    )
))]
mod tests;
