//! Consent that comes from a person: approval requests the operator
//! answers out of band (`kastell approve`), and the declines kastell
//! remembers so that a model cannot confirm for itself what a person
//! refused.
//!
//! Both are small JSON files in the kastell directory, changed under a
//! lock and replaced atomically with mode 0600 ([`ledger`]). They guard
//! against a model that talks its way around, not against one with a
//! shell as the same Unix user: such a model can edit these files or drive
//! `kastell approve` itself. Real separation needs kastell-mcp, and its
//! directory, under a Unix user of their own (see README).

mod decline;
mod ledger;
mod request;

pub(crate) use decline::{Decline, Declines};
pub(crate) use request::{
    APPROVAL_TTL, APPROVAL_TTL_VAR, ApprovalRequest, Approvals, Claim, MAX_APPROVAL_TTL, Wanted,
    parse_id,
};

use kastell_core::{Error, Result};

/// `n` random bytes from `/dev/urandom`; refuses when it cannot be read.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("reading /dev/urandom", e))?;
    Ok(bytes)
}

/// Now, in Unix seconds (what the files record).
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
