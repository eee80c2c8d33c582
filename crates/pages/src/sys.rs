//! The system calls (Linux, on the architectures whose ioctl numbers use
//! the generic encoding the constants below are written in).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use super::smaps::{Mapping, read_only_file_mappings};
use super::{Outcome, Unavailable};

/// `UFFD_API`: the only API version.
const UFFD_API: u64 = 0xAA;
/// `UFFD_FEATURE_WP_ASYNC` (Linux 6.7): the kernel resolves write-protect
/// faults itself, so no thread answers the descriptor.
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `UFFD_USER_MODE_ONLY` (Linux 5.11): only faults in user mode, what
/// unprivileged processes may open with `vm.unprivileged_userfaultfd=0`.
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
/// `UFFDIO_REGISTER_MODE_WP`.
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: u32 = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: u32 = 0xC020_AA00;

/// `struct uffdio_api`.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_register` (its `struct uffdio_range` inlined).
#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// The descriptor of [`super::map_touched_pages_only`], kept open (never
/// dropped) for the process's life: closing it would unregister the
/// mappings.
static KEPT: OnceLock<OwnedFd> = OnceLock::new();

/// The error number of the last failed call.
fn errno() -> Option<i32> {
    std::io::Error::last_os_error().raw_os_error()
}

/// See [`super::map_touched_pages_only`].
pub(super) fn run() -> Outcome {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Outcome {
            unavailable: Some(Unavailable {
                reason: "/proc/self/smaps is not readable",
                errno: errno(),
            }),
            ..Outcome::default()
        };
    };
    let mappings = read_only_file_mappings(&smaps);
    let (mut outcome, fd) = register(&mappings);
    if let Some(fd) = fd {
        let _ = KEPT.set(fd);
    }
    outcome.released = release(&mappings);
    outcome
}

/// A userfaultfd that takes asynchronous write-protect registrations.
fn open() -> Result<OwnedFd, Unavailable> {
    #[allow(unsafe_code)]
    // SAFETY: userfaultfd(2) takes only flags and returns a new descriptor
    // or -1; no memory is passed.
    let raw =
        unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) };
    let raw = match i32::try_from(raw) {
        Ok(raw) if raw >= 0 => raw,
        _ => {
            return Err(Unavailable {
                reason: "userfaultfd refused",
                errno: errno(),
            });
        }
    };
    #[allow(unsafe_code)]
    // SAFETY: `raw` is the descriptor userfaultfd(2) just opened, owned by
    // nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut api = UffdioApi {
        api: UFFD_API,
        features: UFFD_FEATURE_WP_ASYNC,
        ioctls: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: UFFDIO_API reads and writes one `struct uffdio_api`, which
    // `api` is (repr(C), the kernel's layout), alive for the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            UFFDIO_API as libc::Ioctl,
            &mut api as *mut UffdioApi,
        )
    };
    if rc != 0 {
        return Err(Unavailable {
            reason: "the kernel has no asynchronous write-protect (Linux 6.7)",
            errno: errno(),
        });
    }
    Ok(fd)
}

/// Registers `mappings` in write-protect mode with a new userfaultfd,
/// returned when at least one was registered: they stay registered while
/// it is open.
pub(super) fn register(mappings: &[Mapping]) -> (Outcome, Option<OwnedFd>) {
    let fd = match open() {
        Ok(fd) => fd,
        Err(unavailable) => {
            let outcome = Outcome {
                unavailable: Some(unavailable),
                ..Outcome::default()
            };
            return (outcome, None);
        }
    };
    let mut outcome = Outcome::default();
    for mapping in mappings {
        let mut register = UffdioRegister {
            start: mapping.start,
            len: mapping.len,
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        #[allow(unsafe_code)]
        // SAFETY: UFFDIO_REGISTER reads and writes one `struct
        // uffdio_register`, which `register` is (repr(C), the kernel's
        // layout), alive for the call. It changes how the kernel maps
        // pages in, never what they hold, and the kernel checks the range.
        let rc = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                UFFDIO_REGISTER as libc::Ioctl,
                &mut register as *mut UffdioRegister,
            )
        };
        if rc == 0 {
            outcome.registered += 1;
        } else {
            outcome.refused += 1;
        }
    }
    let kept = (outcome.registered > 0).then_some(fd);
    (outcome, kept)
}

/// Lets go of the pages mapped so far in each of `mappings` that holds no
/// page of its own (`anonymous_kib` 0), and returns how many it let go
/// of.
pub(super) fn release(mappings: &[Mapping]) -> usize {
    let mut released = 0;
    for mapping in mappings.iter().filter(|m| m.anonymous_kib == 0) {
        let (Ok(start), Ok(len)) = (usize::try_from(mapping.start), usize::try_from(mapping.len))
        else {
            continue;
        };
        #[allow(unsafe_code)]
        // SAFETY: the range is one read-only private mapping of a file in
        // which the process holds no page of its own (smaps' `Anonymous:
        // 0`), and being read-only none can appear: every page dropped is
        // the file's own, which the next touch maps again with the same
        // bytes (in a registered mapping the kernel leaves a write-protect
        // marker in its place, which that touch replaces). The mapping
        // itself stays, so no reference into it dangles.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc == 0 {
            released += 1;
        }
    }
    released
}
