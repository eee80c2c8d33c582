//! Reading entries back, newest first: [`AuditLog::entries`].

use serde::{Deserialize, Serialize};

use super::AuditLog;
use super::entry::{AuditEntry, Outcome};
use super::files::{Lines, rotated_files};
use super::lock::AuditLock;

/// Which entries [`AuditLog::entries`] returns. The default returns all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries about this server.
    pub server: Option<String>,
    /// Only entries of this operation (`backup-restore`).
    pub op: Option<String>,
    /// Only entries that ended this way.
    pub outcome: Option<Outcome>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl AuditFilter {
    /// Whether `entry` passes the filter (the limit aside).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.server
            .as_deref()
            .is_none_or(|s| entry.server.as_deref() == Some(s))
            && self.op.as_deref().is_none_or(|op| entry.op == op)
            && self.outcome.is_none_or(|o| entry.outcome == o)
    }
}

/// The entries [`AuditLog::entries`] found, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The matching entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// How many lines that are not entries (damaged or cut) were skipped
    /// on the way; `kastell audit verify` says where.
    pub skipped_corrupt: usize,
}

impl AuditLog {
    /// The entries passing `filter`, newest first: `audit.jsonl` from its
    /// end, then the rotated files from `.1` on, stopping once `limit`
    /// entries are found. A line that is not an entry is skipped and
    /// counted, not an error. Holds `audit.lock` shared while reading
    /// (when it can be opened); reads one file into memory at a time.
    /// Refuses only on an I/O failure.
    pub fn entries(&self, filter: &AuditFilter) -> kastell_core::Result<AuditPage> {
        let _lock = AuditLock::shared_if_possible(&self.lock_path());
        let current = self.path();
        let mut paths = vec![current.clone()];
        paths.extend(
            rotated_files(&current)?
                .into_iter()
                .rev()
                .map(|(_, path)| path),
        );
        let mut page = AuditPage::default();
        let limit = filter.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(page);
        }
        for path in paths {
            let Some(mut lines) = Lines::open(&path)? else {
                continue;
            };
            let mut file_lines = Vec::new();
            while let Some((_, bytes, terminated)) = lines.next_line()? {
                file_lines.push((bytes, terminated));
            }
            for (bytes, terminated) in file_lines.into_iter().rev() {
                let entry = terminated
                    .then(|| serde_json::from_slice::<AuditEntry>(&bytes).ok())
                    .flatten();
                match entry {
                    Some(entry) if filter.matches(&entry) => {
                        page.entries.push(entry);
                        if page.entries.len() >= limit {
                            return Ok(page);
                        }
                    }
                    Some(_) => {}
                    None => page.skipped_corrupt += 1,
                }
            }
        }
        Ok(page)
    }
}
