//! The engine: what moves and proves a server's data, below the
//! operations ([`crate::ops`]) and above the plugin contract.
//!
//! - [`backup`]: streamed, checksummed backups published atomically, their
//!   wire plan (where compression runs), verification and restore with a
//!   safety backup and a guaranteed start;
//! - [`drill`]: restore drills, a backup restored into throwaway targets
//!   here and checked;
//! - [`repos`]: the configured backup repositories (restic format) and
//!   pushing backups into them and pulling them back;
//! - `schedule`: systemd timers that back up, prune and drill, and the
//!   alert when one fails;
//! - `remote`: the SSH transport to a server from its fleet record;
//! - `recover`: where a recovered server goes, the key it lets in, what to
//!   change to cut over and what interrupted runs left at a provider.

pub mod backup;
pub mod drill;
pub(crate) mod onserver;
pub(crate) mod recover;
pub(crate) mod remote;
pub mod repos;
pub(crate) mod schedule;

/// `bytes` in binary units with one decimal (`512 B`, `12.0 MiB`,
/// `1.5 GiB`), for progress messages and reasons.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
