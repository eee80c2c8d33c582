//! The chain end to end: appends, verification of every kind of damage,
//! rotation, concurrency and reading back.

use std::path::Path;

use kastell_core::ErrorKind;
use serde_json::json;

use super::files::hash_line;
use super::*;
use crate::env::Env;

fn entry(n: usize) -> AuditEntry {
    let outcome = if n % 5 == 0 {
        Outcome::Error
    } else {
        Outcome::Ok
    };
    AuditEntry::new(AuditSurface::Cli, "backup-create", outcome)
        .with_server(format!("web-{}", n % 3))
        .with_args(json!({"n": n, "token": "hunter2"}))
        .with_id("backup_id", format!("b-{n}"))
}

fn filled(dir: &Path, n: usize) -> AuditLog {
    let log = AuditLog::in_dir(dir);
    for i in 1..=n {
        let head = log.append(entry(i)).unwrap();
        assert_eq!(head.seq, i as u64);
    }
    log
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn problem(log: &AuditLog) -> VerifyProblem {
    let report = log.verify().unwrap();
    assert!(!report.ok, "{report:#?}");
    report.problem.unwrap()
}

#[test]
fn many_appends_make_one_intact_chain_with_the_anchor_at_its_head() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 50);
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.entries_checked, 50);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(50)));
    assert!(report.warnings.is_empty(), "{report:#?}");
    assert!(
        report.summary().contains("intact: 50 entries"),
        "{report:#?}"
    );
    assert!(report.clone().into_result().is_ok());

    let text = lines(&log.path());
    let first: AuditEntry = serde_json::from_str(&text[0]).unwrap();
    assert_eq!(first.prev, GENESIS_PREV);
    assert!(!text[0].contains("hunter2"));
    for pair in text.windows(2) {
        let next: AuditEntry = serde_json::from_str(&pair[1]).unwrap();
        assert_eq!(next.prev, hash_line(pair[0].as_bytes()));
    }
    let anchor: AuditHead =
        serde_json::from_slice(&std::fs::read(tmp.path().join(HEAD_FILE)).unwrap()).unwrap();
    assert_eq!(anchor.seq, 50);
    assert_eq!(anchor.hash, hash_line(text[49].as_bytes()));
    assert_eq!(report.anchor, Some(anchor));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn an_empty_log_is_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let report = AuditLog::in_dir(tmp.path()).verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.entries_checked, 0);
    assert_eq!(report.summary(), "the audit log is empty");
}

#[test]
fn a_changed_byte_is_found_at_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 10);
    let mut text = lines(&log.path());
    text[3] = text[3].replace("backup-create", "backup-cr3ate");
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::ChangedLine, "{p}");
    assert_eq!((p.line, p.seq), (Some(4), Some(4)), "{p}");
    assert!(p.file.ends_with(AUDIT_FILE), "{p}");
    assert!(p.message.contains("changed after it was written"), "{p}");
    let report = log.verify().unwrap();
    assert_eq!(report.entries_checked, 5, "{report:#?}");
    let err = report.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains("line 4 (seq 4)"), "{err}");
    assert!(err.hint().unwrap().contains(HEAD_FILE), "{err:?}");
}

#[test]
fn a_changed_prev_is_blamed_on_its_own_line() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 10);
    let mut text = lines(&log.path());
    let entry: AuditEntry = serde_json::from_str(&text[5]).unwrap();
    let forged = entry.prev.replace(|c: char| c.is_ascii_digit(), "f");
    text[5] = text[5].replace(&entry.prev, &forged);
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::ChangedLine, "{p}");
    assert_eq!((p.line, p.seq), (Some(6), Some(6)), "{p}");
}

#[test]
fn a_line_that_no_longer_parses_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 6);
    let mut text = lines(&log.path());
    text[2] = text[2].replacen('{', "[", 1);
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::UnreadableLine, "{p}");
    assert_eq!(p.line, Some(3), "{p}");

    // A cut last line (no newline).
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 3);
    let bytes = std::fs::read(log.path()).unwrap();
    std::fs::write(log.path(), &bytes[..bytes.len() - 10]).unwrap();
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::CutLine, "{p}");
    assert_eq!(p.line, Some(3), "{p}");
    // And appending after it refuses rather than chaining to half a line.
    let err = log.append(entry(4)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.message().contains("cut mid-way"), "{err}");
}

#[test]
fn a_deleted_middle_line_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 10);
    let mut text = lines(&log.path());
    text.remove(4);
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::MissingEntries, "{p}");
    assert_eq!((p.line, p.seq), (Some(5), Some(6)), "{p}");
    assert!(p.message.contains("entry 5 is missing"), "{p}");
}

#[test]
fn swapped_lines_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 6);
    let mut text = lines(&log.path());
    text.swap(2, 3);
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::MissingEntries, "{p}");
    assert_eq!(p.line, Some(3), "{p}");
}

#[test]
fn a_cut_tail_is_found_through_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 10);
    let text = lines(&log.path());
    write_lines(&log.path(), &text[..7]);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::Truncated, "{p}");
    assert!(
        p.message
            .contains("anchor records entry 10, the log ends at entry 7"),
        "{p}"
    );
    assert_eq!((p.line, p.seq), (Some(7), Some(7)), "{p}");

    // Everything gone but the anchor.
    std::fs::remove_file(log.path()).unwrap();
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::Truncated, "{p}");
}

#[test]
fn a_rewritten_last_line_is_found_through_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 10);
    let mut text = lines(&log.path());
    text[9] = text[9].replace("web-1", "web-9");
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::Rewritten, "{p}");
    assert_eq!((p.line, p.seq), (Some(10), Some(10)), "{p}");
}

#[test]
fn a_last_line_with_a_changed_prev_is_blamed_with_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 5);
    let mut text = lines(&log.path());
    let entry: AuditEntry = serde_json::from_str(&text[4]).unwrap();
    text[4] = text[4].replace(&entry.prev, &"a".repeat(64));
    write_lines(&log.path(), &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::ChangedLine, "{p}");
    assert_eq!(p.line, Some(5), "{p}");
    assert!(p.message.contains("the anchor"), "{p}");
}

#[test]
fn an_anchor_one_behind_is_a_warning_and_further_behind_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 8);
    let at_8 = std::fs::read(log.anchor_path()).unwrap();
    log.append(entry(9)).unwrap();
    // As if the process died between the line and the anchor.
    std::fs::write(log.anchor_path(), &at_8).unwrap();
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.warnings.len(), 1, "{report:#?}");
    assert!(
        report.warnings[0].contains("one entry behind"),
        "{report:#?}"
    );

    log.append(entry(10)).unwrap();
    std::fs::write(log.anchor_path(), &at_8).unwrap();
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::AnchorBehind, "{p}");
    assert!(p.message.contains("2 entries past the anchor"), "{p}");
}

#[test]
fn a_missing_or_broken_anchor_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 3);
    std::fs::remove_file(log.anchor_path()).unwrap();
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::AnchorMissing, "{p}");
    assert!(p.message.starts_with("anchor missing"), "{p}");
    std::fs::write(log.anchor_path(), b"not json").unwrap();
    assert_eq!(problem(&log).kind, ProblemKind::AnchorUnreadable);
}

#[test]
fn the_anchor_can_live_outside_the_kastell_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let anchor = elsewhere.path().join("kastell.head");
    let env = Env::from_pairs([(ANCHOR_VAR, anchor.to_str().unwrap())]);
    let log = AuditLog::for_env(tmp.path(), &env).unwrap();
    assert_eq!(log.anchor_path(), anchor);
    log.append(entry(1)).unwrap();
    assert!(anchor.exists());
    assert!(!tmp.path().join(HEAD_FILE).exists());
    assert!(log.verify().unwrap().ok);
    // Verified against the default anchor, the same log has none.
    let p = problem(&AuditLog::in_dir(tmp.path()));
    assert_eq!(p.kind, ProblemKind::AnchorMissing);
}

#[test]
fn bad_settings_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (var, value) in [(MAX_BYTES_VAR, "big"), (KEEP_VAR, "0"), (KEEP_VAR, "-1")] {
        let err = AuditLog::for_env(tmp.path(), &Env::from_pairs([(var, value)])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{var}={value}");
        assert!(err.message().contains(var), "{err}");
    }
    let env = Env::from_pairs([(MAX_BYTES_VAR, "1000"), (KEEP_VAR, "2")]);
    let log = AuditLog::for_env(tmp.path(), &env).unwrap();
    assert_eq!(
        log,
        AuditLog::in_dir(tmp.path())
            .with_max_bytes(1000)
            .with_keep(2)
    );
}

/// A line of [`entry`] is about 260 bytes: three to a file.
const SMALL: u64 = 800;

#[test]
fn the_chain_goes_on_across_rotated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(SMALL)
        .with_keep(100);
    for i in 1..=20 {
        log.append(entry(i)).unwrap();
    }
    let rotated = super::files::rotated_files(&log.path()).unwrap();
    assert!(rotated.len() >= 4, "{rotated:?}");
    for (_, path) in &rotated {
        assert!(std::fs::metadata(path).unwrap().len() <= SMALL, "{path:?}");
    }
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.entries_checked, 20);
    assert_eq!(report.first_seq, Some(1));
    assert!(report.warnings.is_empty(), "{report:#?}");
    assert_eq!(report.files.len(), rotated.len() + 1);

    // The current file's first line links to the last line of `.1`.
    let newest_rotated = lines(&log.rotated_path(1));
    let first_current: AuditEntry = serde_json::from_str(&lines(&log.path())[0]).unwrap();
    assert_eq!(
        first_current.prev,
        hash_line(newest_rotated.last().unwrap().as_bytes())
    );

    // A change to the last line of a rotated file is found there.
    let target = log.rotated_path(2);
    let mut text = lines(&target);
    let last = text.len() - 1;
    text[last] = text[last].replace("web-", "wab-");
    write_lines(&target, &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::ChangedLine, "{p}");
    assert_eq!(p.file, target.display().to_string());
    assert_eq!(p.line, Some(last + 1), "{p}");
}

#[test]
fn rotation_keeps_only_so_many_files_and_the_chain_then_starts_later() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(SMALL)
        .with_keep(3);
    for i in 1..=30 {
        log.append(entry(i)).unwrap();
    }
    assert!(log.rotated_path(3).exists());
    assert!(!log.rotated_path(4).exists());
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert!(report.warnings.is_empty(), "{report:#?}");
    assert_eq!(report.last_seq, Some(30));
    let first = report.first_seq.unwrap();
    assert!(first > 1, "{report:#?}");
    assert_eq!(report.entries_checked, 30 - first + 1);
    // The anchor records where kastell's rotation left the chain's start.
    let start = report.anchor.unwrap().first.unwrap();
    assert_eq!(start.seq, first);
    let oldest = lines(&log.rotated_path(3));
    assert_eq!(start.hash, hash_line(oldest[0].as_bytes()));
}

#[test]
fn deleting_the_oldest_file_by_hand_is_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(SMALL)
        .with_keep(5);
    for i in 1..=10 {
        log.append(entry(i)).unwrap();
    }
    let rotated = super::files::rotated_files(&log.path()).unwrap();
    let (_, oldest) = &rotated[0];
    let gone = lines(oldest).len() as u64;
    std::fs::remove_file(oldest).unwrap();
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::Truncated, "{p}");
    assert_eq!(p.seq, Some(gone + 1), "{p}");
    assert!(
        p.message.contains(&format!("entries 1 to {gone} were cut")),
        "{p}"
    );
}

#[test]
fn cutting_the_oldest_lines_is_truncation_even_down_to_the_newest_line() {
    let tmp = tempfile::tempdir().unwrap();
    let anchor_dir = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path()).with_anchor(anchor_dir.path().join("head"));
    for i in 1..=6 {
        log.append(entry(i)).unwrap();
    }
    let all = lines(&log.path());
    for keep in [3, 1] {
        write_lines(&log.path(), &all[all.len() - keep..]);
        let p = problem(&log);
        assert_eq!(p.kind, ProblemKind::Truncated, "{p}");
        assert_eq!(p.line, Some(1), "{p}");
        assert!(p.message.contains("the log starts at seq"), "{p}");
        assert!(p.message.contains("starts at seq 1"), "{p}");
    }
    // Put back, the log is intact again.
    write_lines(&log.path(), &all);
    assert!(log.verify().unwrap().ok);
}

#[test]
fn a_replaced_first_line_is_found_through_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(SMALL)
        .with_keep(2);
    for i in 1..=12 {
        log.append(entry(i)).unwrap();
    }
    let oldest = log.rotated_path(2);
    let mut text = lines(&oldest);
    text[0] = text[0].replace("web-", "wab-");
    write_lines(&oldest, &text);
    let p = problem(&log);
    assert_eq!(p.kind, ProblemKind::ChangedLine, "{p}");
    assert_eq!(p.line, Some(1), "{p}");
}

#[test]
fn a_rotation_interrupted_before_its_delete_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(SMALL)
        .with_keep(100);
    for i in 1..=12 {
        log.append(entry(i)).unwrap();
    }
    // The anchor as a rotation leaves it right before it deletes the
    // oldest file: its start moved to the next file's first line.
    let rotated = super::files::rotated_files(&log.path()).unwrap();
    let next_first = lines(&rotated[1].1)[0].clone();
    let seq = serde_json::from_str::<AuditEntry>(&next_first).unwrap().seq;
    let mut head = log.verify().unwrap().anchor.unwrap();
    head.first = Some(ChainStart {
        seq,
        hash: hash_line(next_first.as_bytes()),
    });
    std::fs::write(
        log.anchor_path(),
        serde_json::to_string(&head).unwrap() + "\n",
    )
    .unwrap();
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.first_seq, Some(1));
    // The delete goes through: still intact. One file more: truncated.
    std::fs::remove_file(&rotated[0].1).unwrap();
    assert!(log.verify().unwrap().ok);
    std::fs::remove_file(&rotated[1].1).unwrap();
    assert_eq!(problem(&log).kind, ProblemKind::Truncated);
}

#[test]
fn an_anchor_from_before_the_start_was_recorded_is_read_and_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(SMALL)
        .with_keep(2);
    for i in 1..=12 {
        log.append(entry(i)).unwrap();
    }
    // The anchor as the previous version wrote it: no `first`.
    let head = log.verify().unwrap().anchor.unwrap();
    let old = json!({"seq": head.seq, "hash": head.hash, "ts": head.ts});
    std::fs::write(log.anchor_path(), format!("{old}\n")).unwrap();
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert!(report.warnings[0].contains("predates"), "{report:#?}");
    // The next append records the start; from then on it is proven.
    log.append(entry(13)).unwrap();
    let report = log.verify().unwrap();
    assert!(report.ok && report.warnings.is_empty(), "{report:#?}");
    assert_eq!(
        report.anchor.unwrap().first.unwrap().seq,
        report.first_seq.unwrap()
    );
}

#[test]
fn a_failed_append_says_whether_the_entry_or_only_the_anchor_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 2);
    // The anchor's directory is gone: the entry is written, the anchor not.
    let away = tmp.path().join("away");
    let moved = log.clone().with_anchor(away.join("head"));
    let err = moved.append(entry(3)).unwrap_err();
    assert!(
        err.message().contains("audit entry was written to")
            && err.message().contains("(seq 3), but the anchor")
            && err.message().contains("was not updated"),
        "{err}"
    );
    assert!(
        err.hint().unwrap().contains("kastell audit verify"),
        "{err:?}"
    );
    // The log itself cannot take the line: nothing was written.
    let broken = tempfile::tempdir().unwrap();
    std::fs::create_dir(broken.path().join(AUDIT_FILE)).unwrap();
    let err = AuditLog::in_dir(broken.path())
        .append(entry(1))
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("the audit entry was not written to"),
        "{err}"
    );
}

#[test]
fn a_rotation_interrupted_before_the_append_continues_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let log = filled(tmp.path(), 4);
    // As if the process died right after renaming the file.
    std::fs::rename(log.path(), log.rotated_path(1)).unwrap();
    assert_eq!(log.append(entry(5)).unwrap().seq, 5);
    assert!(log.verify().unwrap().ok);
}

#[test]
fn concurrent_appends_from_eight_threads_keep_one_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path())
        .with_max_bytes(4000)
        .with_keep(1000);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let log = log.clone();
            scope.spawn(move || {
                for i in 0..25 {
                    log.append(entry(t * 100 + i)).unwrap();
                }
            });
        }
    });
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.entries_checked, 200);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(200)));
    assert!(report.warnings.is_empty(), "{report:#?}");
    let all = log.entries(&AuditFilter::default()).unwrap();
    let seqs: Vec<u64> = all.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=200).rev().collect::<Vec<_>>());
}

#[test]
fn entries_come_newest_first_filtered_and_skip_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(tmp.path()).with_max_bytes(SMALL);
    for i in 1..=12 {
        log.append(entry(i)).unwrap();
    }
    let all = log.entries(&AuditFilter::default()).unwrap();
    assert_eq!(all.entries.len(), 12);
    assert_eq!(all.entries[0].seq, 12);
    assert_eq!(all.skipped_corrupt, 0);

    let limited = log
        .entries(&AuditFilter {
            limit: Some(4),
            ..AuditFilter::default()
        })
        .unwrap();
    let seqs: Vec<u64> = limited.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![12, 11, 10, 9]);

    let web1 = log
        .entries(&AuditFilter {
            server: Some("web-1".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let seqs: Vec<u64> = web1.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![10, 7, 4, 1]);

    let errors = log
        .entries(&AuditFilter {
            outcome: Some(Outcome::Error),
            op: Some("backup-create".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let seqs: Vec<u64> = errors.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![10, 5]);
    let none = log
        .entries(&AuditFilter {
            op: Some("snapshot-delete".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert!(none.entries.is_empty());

    let mut text = lines(&log.path());
    text.insert(0, "garbage".into());
    write_lines(&log.path(), &text);
    let page = log.entries(&AuditFilter::default()).unwrap();
    assert_eq!(page.entries.len(), 12);
    assert_eq!(page.skipped_corrupt, 1);
}
