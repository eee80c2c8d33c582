//! Checking the chain: [`AuditLog::verify`] and its [`VerifyReport`].

use std::fmt;
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::AuditLog;
use super::anchor::{AuditHead, ChainStart, read_anchor};
use super::entry::{AuditEntry, GENESIS_PREV};
use super::files::{Lines, hash_line, rotated_files};
use super::lock::AuditLock;

/// What kind of problem [`AuditLog::verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A line is not a valid entry (not JSON, missing fields, empty).
    UnreadableLine,
    /// A line ends without a newline: it was cut mid-way.
    CutLine,
    /// The entry with seq 1 does not start from [`GENESIS_PREV`], or an
    /// entry has seq 0.
    BadStart,
    /// Seqs jump forward: entries between two lines are missing.
    MissingEntries,
    /// Seqs repeat or go backwards: lines were duplicated, reordered or
    /// inserted.
    SeqOutOfOrder,
    /// A line's bytes no longer match the hash the chain recorded.
    ChangedLine,
    /// The log has entries but there is no anchor.
    AnchorMissing,
    /// The anchor file is not an anchor.
    AnchorUnreadable,
    /// Entries the anchor records are gone: the log ends before the
    /// anchor's head, or starts after the oldest line kastell keeps (its
    /// oldest lines were cut, not rotated away).
    Truncated,
    /// The anchor records the log's last seq with a different hash.
    Rewritten,
    /// The log goes on more than one entry past the anchor.
    AnchorBehind,
}

/// The first problem [`AuditLog::verify`] found, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyProblem {
    /// What kind of problem it is.
    pub kind: ProblemKind,
    /// The file it is in (a log file, or the anchor).
    pub file: String,
    /// The 1-based line number in `file`, when the problem is at a line.
    pub line: Option<usize>,
    /// The seq of the entry concerned, when known.
    pub seq: Option<u64>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        match (self.line, self.seq) {
            (Some(line), Some(seq)) => write!(f, " line {line} (seq {seq})")?,
            (Some(line), None) => write!(f, " line {line}")?,
            (None, Some(seq)) => write!(f, " (seq {seq})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// What [`AuditLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the chain and the anchor are intact (warnings allowed).
    pub ok: bool,
    /// How many entries were checked (up to the first problem).
    pub entries_checked: u64,
    /// The log files walked, oldest first.
    pub files: Vec<String>,
    /// The seq the kept chain starts at (1 unless older files were
    /// rotated away).
    pub first_seq: Option<u64>,
    /// The seq of the last entry checked.
    pub last_seq: Option<u64>,
    /// Where the anchor is.
    pub anchor_path: String,
    /// What the anchor records, when it could be read.
    pub anchor: Option<AuditHead>,
    /// Things worth knowing that do not break the chain.
    pub warnings: Vec<String>,
    /// The first problem, when not ok.
    pub problem: Option<VerifyProblem>,
}

impl VerifyReport {
    /// One sentence saying how it went.
    pub fn summary(&self) -> String {
        match &self.problem {
            Some(problem) => format!(
                "the audit log is not intact: {problem} ({} entries checked before it)",
                self.entries_checked
            ),
            None => match (self.first_seq, self.last_seq) {
                (Some(first), Some(last)) => format!(
                    "the audit log is intact: {} entries checked (seq {first} to {last}), \
                     the anchor matches",
                    self.entries_checked
                ),
                _ => "the audit log is empty".to_owned(),
            },
        }
    }

    /// The report when ok, else an error of kind `Corrupt` with the
    /// [`VerifyReport::summary`] and a hint naming the anchor.
    pub fn into_result(self) -> Result<Self> {
        if self.ok {
            return Ok(self);
        }
        Err(Error::new(ErrorKind::Corrupt, self.summary()).with_hint(format!(
            "The log was edited or cut; keep the file for investigation, compare with the anchor \
             at {}",
            self.anchor_path
        )))
    }
}

impl AuditLog {
    /// Checks the whole chain and the anchor.
    ///
    /// Walks the rotated files oldest first, then `audit.jsonl`: every
    /// line must be a complete entry, each seq one more than the one
    /// before, and each `prev` the hash of the exact bytes of the line
    /// before. Seq 1 must start from [`GENESIS_PREV`].
    ///
    /// The anchor also records where the kept chain starts (seq 1 until
    /// kastell's own rotation deletes the oldest file, which moves it in
    /// the anchor first): a log that starts later than that had its oldest
    /// lines cut ("truncated"), and the line at that seq must have the
    /// recorded hash. A log that starts earlier is what a rotation
    /// interrupted before its delete leaves, and is fine. An anchor
    /// written before kastell recorded the start cannot prove it: a chain
    /// starting after seq 1 is then a warning.
    ///
    /// Then the end of the chain is compared with the anchor: it must
    /// record the last line's seq and hash. A log with entries and no
    /// anchor fails ("anchor missing"); a log that ends before the
    /// anchor's seq was cut ("truncated"); the same seq with another hash
    /// was rewritten.
    ///
    /// One exception: [`AuditLog::append`] writes the line, then the
    /// anchor, so a crash between the two leaves the anchor exactly one
    /// line behind. An anchor that matches the second-to-last line is
    /// therefore accepted with a warning. Anything further ahead of the
    /// anchor cannot come from one interrupted append and fails.
    ///
    /// The report is ok, or names the FIRST problem (file, line, seq and
    /// what is wrong). Refuses only on an I/O failure reading the files;
    /// damage is reported, not returned as an error (see
    /// [`VerifyReport::into_result`]).
    pub fn verify(&self) -> Result<VerifyReport> {
        let _lock = AuditLock::shared_if_possible(&self.lock_path());
        let current = self.path();
        let mut paths: Vec<PathBuf> = rotated_files(&current)?
            .into_iter()
            .map(|(_, path)| path)
            .collect();
        paths.push(current.clone());

        let (anchor, anchor_problem) = match read_anchor(&self.anchor) {
            Ok(anchor) => (anchor, None),
            Err(e) if e.kind() == ErrorKind::Corrupt => (None, Some(e.message().to_owned())),
            Err(e) => return Err(e),
        };
        let mut walk = Walk {
            start: anchor.as_ref().and_then(|a| a.first.clone()),
            anchored: anchor.is_some(),
            ..Walk::default()
        };
        let mut files = Vec::new();
        'files: for path in &paths {
            let Some(mut lines) = Lines::open(path)? else {
                continue;
            };
            files.push(path.display().to_string());
            while let Some((number, bytes, terminated)) = lines.next_line()? {
                walk.feed(path, number, &bytes, terminated);
                if walk.problem.is_some() {
                    break 'files;
                }
            }
        }
        walk.finish(&current, &self.anchor, anchor.as_ref(), anchor_problem);
        Ok(VerifyReport {
            ok: walk.problem.is_none(),
            entries_checked: walk.checked,
            files,
            first_seq: walk.first_seq,
            last_seq: walk.last.as_ref().map(|s| s.seq),
            anchor_path: self.anchor.display().to_string(),
            anchor,
            warnings: walk.warnings,
            problem: walk.problem,
        })
    }
}

/// A line already checked.
#[derive(Debug, Clone)]
struct Seen {
    file: PathBuf,
    line: usize,
    seq: u64,
    hash: String,
}

/// Two neighbours that do not link (`later.prev != earlier.hash`): either
/// `earlier` was changed, or `later` was (its `prev` with it). The line
/// after `later` (or the anchor) tells which.
#[derive(Debug)]
struct Unlinked {
    earlier: Seen,
    later: Seen,
}

/// The state of a walk along the chain.
#[derive(Debug, Default)]
struct Walk {
    /// Where the anchor says the kept chain starts, when it says.
    start: Option<ChainStart>,
    /// Whether there is an anchor at all.
    anchored: bool,
    last: Option<Seen>,
    before_last: Option<Seen>,
    unlinked: Option<Unlinked>,
    checked: u64,
    first_seq: Option<u64>,
    warnings: Vec<String>,
    problem: Option<VerifyProblem>,
}

impl Walk {
    fn fail(&mut self, kind: ProblemKind, file: &Path, line: usize, seq: Option<u64>, msg: String) {
        self.problem = Some(VerifyProblem {
            kind,
            file: file.display().to_string(),
            line: Some(line),
            seq,
            message: msg,
        });
    }

    /// Blames the line of an [`Unlinked`] pair that was changed: `later`
    /// when the line after it (or the anchor) does not match it either,
    /// else `earlier`.
    fn blame(&mut self, pair: Unlinked, later_disowned: Option<&str>) {
        let Unlinked { earlier, later } = pair;
        match later_disowned {
            Some(by) => self.fail(
                ProblemKind::ChangedLine,
                &later.file,
                later.line,
                Some(later.seq),
                format!(
                    "this entry was changed after it was written: its prev does not match the \
                     entry before it (seq {}), and {by} does not match it either",
                    earlier.seq
                ),
            ),
            None => self.fail(
                ProblemKind::ChangedLine,
                &earlier.file,
                earlier.line,
                Some(earlier.seq),
                format!(
                    "this entry was changed after it was written: its SHA-256 no longer matches \
                     the prev recorded by the next entry (seq {}, {} line {})",
                    later.seq,
                    later.file.display(),
                    later.line
                ),
            ),
        }
    }

    fn feed(&mut self, file: &Path, number: usize, bytes: &[u8], terminated: bool) {
        if let Some(pair) = self.unlinked.take() {
            // Only this line's prev matters now.
            let prev = serde_json::from_slice::<AuditEntry>(bytes)
                .ok()
                .map(|e| e.prev);
            let disowned = prev.as_deref() != Some(pair.later.hash.as_str());
            self.blame(pair, disowned.then_some("the entry after it"));
            return;
        }
        if !terminated {
            self.fail(
                ProblemKind::CutLine,
                file,
                number,
                None,
                "this line ends without a newline: it was cut mid-way (a crash during a write, \
                 or the file was truncated)"
                    .to_owned(),
            );
            return;
        }
        let entry = match serde_json::from_slice::<AuditEntry>(bytes) {
            Ok(entry) => entry,
            Err(e) => {
                let what = if bytes.is_empty() {
                    "this line is empty".to_owned()
                } else {
                    format!("this line is not a valid audit entry ({e})")
                };
                self.fail(ProblemKind::UnreadableLine, file, number, None, what);
                return;
            }
        };
        let seq = entry.seq;
        let here = Seen {
            file: file.to_owned(),
            line: number,
            seq,
            hash: hash_line(bytes),
        };
        match &self.last {
            None => {
                if seq == 0 {
                    self.fail(
                        ProblemKind::BadStart,
                        file,
                        number,
                        Some(seq),
                        "seq 0 is not a valid position; the chain counts from 1".to_owned(),
                    );
                    return;
                }
                if seq == 1 && entry.prev != GENESIS_PREV {
                    self.fail(
                        ProblemKind::BadStart,
                        file,
                        number,
                        Some(seq),
                        format!(
                            "the first entry (seq 1) must start from 64 zeros but its prev is \
                             {}: it was changed",
                            entry.prev
                        ),
                    );
                    return;
                }
                match &self.start {
                    Some(start) if seq > start.seq => {
                        let msg = format!(
                            "truncated: the log starts at seq {seq}, but the anchor records that \
                             the kept log starts at seq {}; entries {} to {} were cut (kastell's \
                             own rotation moves the anchor's start before it deletes a file)",
                            start.seq,
                            start.seq,
                            seq - 1
                        );
                        self.fail(ProblemKind::Truncated, file, number, Some(seq), msg);
                        return;
                    }
                    None if seq > 1 && self.anchored => self.warnings.push(format!(
                        "the chain starts at seq {seq} ({} line {number}), and the anchor predates \
                         kastell recording where the kept log starts: whether older entries were \
                         rotated away or cut cannot be told (the next append records it)",
                        file.display()
                    )),
                    _ => {}
                }
                self.first_seq = Some(seq);
            }
            Some(last) => {
                let expected = last.seq.saturating_add(1);
                if seq > expected {
                    let missing = if seq - 1 == expected {
                        format!("entry {expected} is")
                    } else {
                        format!("entries {expected} to {} are", seq - 1)
                    };
                    let msg = format!(
                        "the seq jumps from {} to {seq}: {missing} missing (lines were deleted)",
                        last.seq
                    );
                    self.fail(ProblemKind::MissingEntries, file, number, Some(seq), msg);
                    return;
                }
                if seq < expected {
                    let msg = format!(
                        "the seq goes from {} to {seq}: lines were duplicated, reordered or \
                         inserted",
                        last.seq
                    );
                    self.fail(ProblemKind::SeqOutOfOrder, file, number, Some(seq), msg);
                    return;
                }
                if entry.prev != last.hash {
                    self.unlinked = Some(Unlinked {
                        earlier: last.clone(),
                        later: here.clone(),
                    });
                }
            }
        }
        if let Some(start) = &self.start
            && start.seq == seq
            && start.hash != here.hash
        {
            self.fail(
                ProblemKind::ChangedLine,
                file,
                number,
                Some(seq),
                "the anchor records this entry as where the kept log starts, with another hash: \
                 it was changed or replaced"
                    .to_owned(),
            );
            return;
        }
        self.before_last = self.last.replace(here);
        self.checked += 1;
    }

    fn finish(
        &mut self,
        current: &Path,
        anchor_path: &Path,
        anchor: Option<&AuditHead>,
        anchor_problem: Option<String>,
    ) {
        if let Some(pair) = self.unlinked.take() {
            // The changed line is the last one: the anchor tells which.
            let disowned =
                anchor.is_some_and(|a| a.seq == pair.later.seq && a.hash != pair.later.hash);
            self.blame(pair, disowned.then_some("the anchor"));
        }
        if self.problem.is_some() {
            return;
        }
        let anchor_file = anchor_path.display().to_string();
        let at_anchor = |kind, message: String| VerifyProblem {
            kind,
            file: anchor_file.clone(),
            line: None,
            seq: None,
            message,
        };
        if let Some(why) = anchor_problem {
            self.problem = Some(at_anchor(ProblemKind::AnchorUnreadable, why));
            return;
        }
        let (last, anchor) = match (self.last.clone(), anchor) {
            (None, None) => return,
            (Some(last), None) => {
                self.problem = Some(at_anchor(
                    ProblemKind::AnchorMissing,
                    format!(
                        "anchor missing: the log has entries up to seq {} but there is no \
                         anchor (it was deleted, or KASTELL_AUDIT_ANCHOR points elsewhere)",
                        last.seq
                    ),
                ));
                return;
            }
            (None, Some(anchor)) => {
                self.problem = Some(VerifyProblem {
                    kind: ProblemKind::Truncated,
                    file: current.display().to_string(),
                    line: None,
                    seq: None,
                    message: format!(
                        "truncated: the anchor records entry {}, the log has no entries left",
                        anchor.seq
                    ),
                });
                return;
            }
            (Some(last), Some(anchor)) => (last, anchor),
        };
        let at_last = |kind, message: String| VerifyProblem {
            kind,
            file: last.file.display().to_string(),
            line: Some(last.line),
            seq: Some(last.seq),
            message,
        };
        if anchor.seq > last.seq {
            self.problem = Some(at_last(
                ProblemKind::Truncated,
                format!(
                    "truncated: the anchor records entry {}, the log ends at entry {}; entries \
                     after it were cut",
                    anchor.seq, last.seq
                ),
            ));
        } else if anchor.seq == last.seq {
            if anchor.hash != last.hash {
                self.problem = Some(at_last(
                    ProblemKind::Rewritten,
                    "rewritten: the anchor records a different hash for this last entry; it \
                     was changed after it was written"
                        .to_owned(),
                ));
            }
        } else if anchor.seq + 1 == last.seq
            && self
                .before_last
                .as_ref()
                .is_some_and(|b| b.seq == anchor.seq && b.hash == anchor.hash)
        {
            self.warnings.push(format!(
                "the anchor is one entry behind (it records seq {}, the log ends at {}): an \
                 append was interrupted before it updated the anchor, or is still under way",
                anchor.seq, last.seq
            ));
        } else if anchor.seq + 1 == last.seq {
            let before = self.before_last.clone();
            self.problem = Some(match before {
                Some(b) => VerifyProblem {
                    kind: ProblemKind::Rewritten,
                    file: b.file.display().to_string(),
                    line: Some(b.line),
                    seq: Some(b.seq),
                    message: "rewritten: the anchor records a different hash for this entry; \
                              the end of the log was replaced"
                        .to_owned(),
                },
                None => at_last(
                    ProblemKind::AnchorBehind,
                    format!(
                        "the anchor records entry {}, which is no longer in the kept log",
                        anchor.seq
                    ),
                ),
            });
        } else {
            self.problem = Some(at_last(
                ProblemKind::AnchorBehind,
                format!(
                    "the log goes on {} entries past the anchor (which records seq {}): entries \
                     were added without kastell, or the anchor was replaced with an older copy",
                    last.seq - anchor.seq,
                    anchor.seq
                ),
            ));
        }
    }
}
