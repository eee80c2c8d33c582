//! Servers that back themselves up into the shared repository
//! (`kastell schedule install --on-server`): the operator's machine
//! installs, lists, verifies, prunes and checks freshness, but no backup
//! byte passes through it.
//!
//! **Trust model.** Each server writes into a restic repository of its
//! own (`<shared prefix or directory>/servers/<server>`, its own random
//! password) with a login of its own that the storage limits to that
//! place and that may not delete there (except restic's lock files): on
//! S3 a key of its own, on SFTP an SSH key made on the server and forced
//! by the storage into an append-only rclone REST server on its directory
//! (`sftp`). A server cannot read, overwrite or delete another server's
//! backups, and a compromised server cannot delete its own history. kastell checks what it can (the
//! key is not the operator's; files are root-only) and prints the storage
//! side (README, "On-server backups"); the storage enforces it.
//!
//! On the server: a root-only script (`capture` takes its commands from
//! the platform's own backup, `files` renders it), a 0600 environment
//! file and a 0600 password file (the only places secrets are), and a
//! systemd service and timer, or a cron line where systemd does not run
//! (`remote`). On this machine: `state` (which servers, their passwords,
//! their repositories registered beside the shared one) and `freshness`
//! (the newest complete run per server, read from the repository).
//! Before anything is written on a server, `canary` proves from that
//! server, with its own login, that the storage refuses it deletes and
//! overwrites; the install stops when it does not.

pub(crate) mod canary;
pub(crate) mod capture;
pub(crate) mod files;
pub(crate) mod freshness;
pub(crate) mod remote;
pub(crate) mod rest;
pub(crate) mod sftp;
pub(crate) mod state;
