//! The repository's tests, in one binary so the workspace links it once
//! instead of once per file: stock restic reading what kastell stored, a
//! real S3 server (SeaweedFS), a real OpenSSH server over SFTP (full access
//! and append-only) and a real full disk. One module per family; shared
//! helpers in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod full_disk;
mod restic_format;
mod reuse;
mod s3;
mod sftp;
mod sftp_append_only;
mod stream;
mod support;
