//! The fleet store: `servers.json` in the kastell directory.
//!
//! Reads never lock (writes are atomic renames, so a reader sees a whole
//! file). Every change is a read-modify-write under the
//! `servers.json.lock/` directory lock, and re-reads the file inside the
//! lock, so concurrent kastell processes never lose each other's changes.
//! All calls are blocking file I/O that finishes in milliseconds unless
//! another process holds the lock (then up to [`LockOptions::wait`]).

mod atomic;
mod file;
mod lock;
mod record;
mod regular;
mod resolve;
mod validate;

use std::path::{Path, PathBuf};

use kastell_core::types::ServerId;
use kastell_core::{Error, ErrorKind, Result};

pub use atomic::{TEMP_PREFIX, append_private, sync_dir, write_atomic};
pub use lock::{LockOptions, LockOwner, OWNER_FILE, StoreLock, clear_stale, hostname};
pub use record::{
    MODE_BARE, MODE_COOLIFY, PLATFORM_BARE, ServerRecord, SshSettings, is_known_platform,
    is_known_provider, stored_platform,
};
pub use regular::{open_regular, read_regular};
pub use resolve::{find, resolve};
pub use validate::{
    ALLOW_PRIVATE_IPS_VAR, SENTINEL_IPS, allow_private_ips, is_sentinel_ip, parse_ipv4_strict,
    validate_ip, validate_name, validate_record, validate_tag,
};

pub(crate) use atomic::sweep_debris;
pub(crate) use regular::open_with;
pub(crate) use validate::{display_safe, shown};

use file::Entry;

/// The store file's name inside the kastell directory.
pub const SERVERS_FILE: &str = "servers.json";
/// The lock directory's name inside the kastell directory.
pub const LOCK_DIR: &str = "servers.json.lock";

/// The fleet of servers kastell manages, stored in `servers.json`.
#[derive(Debug, Clone)]
pub struct FleetStore {
    dir: PathBuf,
    file: PathBuf,
    lock_dir: PathBuf,
    lock: LockOptions,
}

impl FleetStore {
    /// Opens the store in `dir`, creating the directory (mode 0700) if it
    /// is missing. The file itself is created on the first change. Refuses
    /// when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        crate::state::paths::ensure_private_dir(&dir)?;
        Ok(Self {
            file: dir.join(SERVERS_FILE),
            lock_dir: dir.join(LOCK_DIR),
            dir,
            lock: LockOptions::default(),
        })
    }

    /// Opens the store in [`crate::state::paths::kastell_dir`]. Refuses as that
    /// function and [`FleetStore::open`] do.
    pub fn open_default() -> Result<Self> {
        Self::open(crate::state::paths::kastell_dir()?)
    }

    /// Uses `lock` instead of the default lock timings.
    pub fn with_lock_options(mut self, lock: LockOptions) -> Self {
        self.lock = lock;
        self
    }

    /// The kastell directory holding the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `servers.json`.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Every well-formed record, in file order, including records whose
    /// provider this build does not know (see [`resolve`] for how those are
    /// treated). Elements that are not valid records are skipped with a
    /// warning but kept in the file. Refuses with `ConfigInvalid` when the
    /// file is not a JSON array.
    pub fn servers(&self) -> Result<Vec<ServerRecord>> {
        Ok(file::records(&file::read_entries(&self.file)?))
    }

    /// Resolves `query` to one server by the rules of [`resolve`].
    pub fn resolve(&self, query: Option<&str>) -> Result<ServerRecord> {
        let records = self.servers()?;
        resolve(&records, query).cloned()
    }

    /// The record whose IP, else name, equals `name_or_ip` exactly,
    /// regardless of its provider. `None` when there is none.
    pub fn find(&self, name_or_ip: &str) -> Result<Option<ServerRecord>> {
        let records = self.servers()?;
        Ok(find(&records, name_or_ip).cloned())
    }

    /// Adds `record` and returns it as stored.
    ///
    /// Refuses an invalid name, an `id` that is not a valid server id, an
    /// IP that is neither a strict dotted quad nor a provisioning sentinel
    /// (the private/reserved range policy of [`validate_ip`] is the
    /// caller's to apply), a duplicate name (`Server already exists: name
    /// "<n>"`), a duplicate concrete IP (`Server already exists: IP <ip>`;
    /// sentinels are exempt) and a duplicate non-manual id, all as
    /// `InvalidInput` or `AlreadyExists`. A `manual-` id that collides is
    /// bumped to the next free `manual-<ms>` value instead.
    pub fn add(&self, mut record: ServerRecord) -> Result<ServerRecord> {
        check_record(&record)?;
        self.modify(|entries| {
            check_unique(entries, &record, None)?;
            record.id = free_id(entries, &record.id)?;
            entries.push(Entry::Record(record.clone()));
            Ok(record)
        })
    }

    /// Removes the server whose IP, else name, equals `name_or_ip` and
    /// returns it. Refuses with `NotFound` (listing the servers) when there
    /// is none.
    pub fn remove(&self, name_or_ip: &str) -> Result<ServerRecord> {
        self.modify(|entries| {
            let index = locate(entries, name_or_ip)?;
            match entries.remove(index) {
                Entry::Record(record) => Ok(record),
                Entry::Unreadable(_) => Err(Error::unexpected("located an unreadable entry")),
            }
        })
    }

    /// Changes the server whose IP, else name, equals `name_or_ip` with
    /// `change`, and returns the new record. The change is checked as
    /// [`FleetStore::add`] checks a new record (against the other servers);
    /// if it fails, nothing is written. Refuses with `NotFound` when there
    /// is no such server.
    pub fn update(
        &self,
        name_or_ip: &str,
        change: impl FnOnce(&mut ServerRecord),
    ) -> Result<ServerRecord> {
        self.modify(|entries| {
            let index = locate(entries, name_or_ip)?;
            let Some(Entry::Record(current)) = entries.get(index) else {
                return Err(Error::unexpected("located an unreadable entry"));
            };
            let mut updated = current.clone();
            change(&mut updated);
            check_record(&updated)?;
            check_unique(entries, &updated, Some(index))?;
            entries[index] = Entry::Record(updated.clone());
            Ok(updated)
        })
    }

    /// Pins `fingerprint` (`SHA256:<base64>`) as the server's SSH host key.
    /// Pinning the key already pinned is a no-op. Refuses a malformed
    /// fingerprint (`InvalidInput`) and a different key when one is already
    /// pinned (`HostKeyMismatch`: a changed key must be cleared on purpose
    /// with [`FleetStore::unpin_host_key`]).
    pub fn pin_host_key(&self, name_or_ip: &str, fingerprint: &str) -> Result<ServerRecord> {
        check_fingerprint(fingerprint)?;
        let mut conflict = None;
        let record = self.update(name_or_ip, |r| {
            let ssh = r.ssh.get_or_insert_with(SshSettings::default);
            match ssh.host_key.as_deref() {
                Some(old) if old != fingerprint => conflict = Some(old.to_owned()),
                _ => ssh.host_key = Some(fingerprint.to_owned()),
            }
        });
        if let Some(old) = conflict {
            return Err(Error::new(
                ErrorKind::HostKeyMismatch,
                format!(
                    "Server {} already has a different pinned host key ({old}); refusing to replace it with {fingerprint}",
                    display_safe(name_or_ip)
                ),
            )
            .with_hint("If the server was rebuilt on purpose, clear the pinned key and connect again; otherwise treat this as a possible attack"));
        }
        record
    }

    /// Forgets the server's pinned host key. Refuses with `NotFound` when
    /// there is no such server.
    pub fn unpin_host_key(&self, name_or_ip: &str) -> Result<ServerRecord> {
        self.update(name_or_ip, |r| {
            if let Some(ssh) = r.ssh.as_mut() {
                ssh.host_key = None;
            }
            if r.ssh.as_ref().is_some_and(SshSettings::is_empty) {
                r.ssh = None;
            }
        })
    }

    /// Runs `change` on the entries under the lock, re-reading the file
    /// inside the lock and writing it back atomically when `change`
    /// succeeds. Nothing is written when it fails. Temporary files left by
    /// writers killed mid-write are swept first.
    fn modify<T>(&self, change: impl FnOnce(&mut Vec<Entry>) -> Result<T>) -> Result<T> {
        let lock = StoreLock::acquire(&self.lock_dir, &self.lock)?;
        atomic::sweep_debris(&self.file);
        let mut entries = file::read_entries(&self.file)?;
        let out = change(&mut entries)?;
        write_atomic(&self.file, &file::render(&entries)?)?;
        lock.release()?;
        Ok(out)
    }
}

fn check_record(record: &ServerRecord) -> Result<()> {
    validate_name(&record.name)?;
    ServerId::new(record.id.as_str()).map_err(|e| {
        e.or_hint("Use the provider's server id, or manual-<epoch-ms> for a server with none")
    })?;
    if !is_sentinel_ip(&record.ip) {
        parse_ipv4_strict(&record.ip)?;
    }
    Ok(())
}

fn check_fingerprint(fingerprint: &str) -> Result<()> {
    let body = fingerprint.strip_prefix("SHA256:").unwrap_or_default();
    let ok = !body.is_empty()
        && body.len() <= 88
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "Invalid host key fingerprint {}",
            validate::shown(fingerprint)
        ))
        .with_hint("Use the OpenSSH form SHA256:<base64>, as printed by ssh-keygen -lf"))
    }
}

/// Refuses `record` when another entry (not `skip`) has its name, its
/// concrete IP, or (for non-manual ids) its id.
fn check_unique(entries: &[Entry], record: &ServerRecord, skip: Option<usize>) -> Result<()> {
    let others = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, e)| e);
    for other in others {
        if other.name() == Some(record.name.as_str()) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("Server already exists: name \"{}\"", record.name),
            )
            .with_hint(format!(
                "Choose another name, or remove the existing one first: kastell server remove {}",
                record.name
            )));
        }
        if !is_sentinel_ip(&record.ip) && other.ip() == Some(record.ip.as_str()) {
            let owner = other.name().unwrap_or("another entry");
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("Server already exists: IP {}", record.ip),
            )
            .with_hint(format!("{owner} already uses this IP")));
        }
        if !record.is_manual() && other.id() == Some(record.id.as_str()) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("Server already exists: id \"{}\"", record.id),
            )
            .with_hint("Each provider server can be added once"));
        }
    }
    Ok(())
}

/// `id`, or for a colliding `manual-` id the next free one.
fn free_id(entries: &[Entry], id: &str) -> Result<String> {
    let taken = |candidate: &str| entries.iter().any(|e| e.id() == Some(candidate));
    if !taken(id) {
        return Ok(id.to_owned());
    }
    let stem = id.strip_prefix("manual-").unwrap_or(id);
    for k in 1..=10_000u64 {
        let candidate = match stem.parse::<u64>() {
            Ok(ms) => format!("manual-{}", ms.saturating_add(k)),
            Err(_) => format!("{id}-{k}"),
        };
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::new(
        ErrorKind::AlreadyExists,
        format!("Server already exists: id \"{id}\""),
    ))
}

/// The index of the record whose IP, else name, equals `query`.
fn locate(entries: &[Entry], query: &str) -> Result<usize> {
    let is_record = |e: &Entry| matches!(e, Entry::Record(_));
    entries
        .iter()
        .position(|e| is_record(e) && e.ip() == Some(query))
        .or_else(|| {
            entries
                .iter()
                .position(|e| is_record(e) && e.name() == Some(query))
        })
        .ok_or_else(|| {
            let names: Vec<&str> = entries
                .iter()
                .filter(|e| is_record(e))
                .filter_map(Entry::name)
                .collect();
            let err = Error::not_found(format!("Server not found: {}", display_safe(query)));
            if names.is_empty() {
                err.with_hint(
                    "No servers yet. Add one with: kastell server add --name <name> --ip <ip>",
                )
            } else {
                err.with_hint(resolve::available_hint("Available servers", &names))
            }
        })
}

#[cfg(test)]
mod tests;
