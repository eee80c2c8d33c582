//! How a backup's apps are shown to a person: one table row per app.

use kastell_core::types::AppBackup;

use crate::ops::progress::human_bytes;

/// The lines of a backup's apps table (none when it holds no app): app,
/// name, estimated size, stored size, artifacts; then how consistent each
/// kind of copy is. Names come from the server: only ever shown, their
/// control characters escaped by the CLI.
pub(crate) fn apps_table(apps: &[AppBackup]) -> Vec<String> {
    if apps.is_empty() {
        return Vec::new();
    }
    let rows: Vec<[String; 5]> = apps
        .iter()
        .map(|a| {
            [
                a.app.clone(),
                a.name.clone(),
                a.estimated_bytes
                    .map_or_else(|| "?".to_owned(), human_bytes),
                human_bytes(a.stored_bytes),
                a.artifacts.join(", "),
            ]
        })
        .collect();
    let header = ["APP", "NAME", "BEFORE (EST.)", "STORED", "ARTIFACTS"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 5]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}", text.join("  ").trim_end())
    };
    let mut out = vec![format!("  apps ({}):", apps.len()), line(header)];
    for row in &rows {
        out.push(line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    let mut kinds: Vec<&String> = apps.iter().flat_map(|a| &a.consistency).collect();
    kinds.sort();
    kinds.dedup();
    out.extend(kinds.iter().map(|k| format!("  consistency: {k}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_table_shows_sizes_before_and_after_and_each_consistency_once() {
        let app = |key: &str, est: Option<u64>, stored: u64, kind: &str| AppBackup {
            app: key.into(),
            name: format!("{key} name"),
            artifacts: vec![format!("app-{key}-{kind}")],
            estimated_bytes: est,
            stored_bytes: stored,
            consistency: vec![format!("{kind}: consistent")],
        };
        assert!(apps_table(&[]).is_empty(), "no apps, no table");
        let lines = apps_table(&[
            app("k1", Some(3 * 1024 * 1024), 1024 * 1024, "postgres"),
            app("k2", None, 10, "postgres"),
        ]);
        assert_eq!(lines[0], "  apps (2):");
        assert!(
            lines[1].starts_with("  APP  NAME     BEFORE (EST.)  STORED"),
            "{lines:?}"
        );
        assert!(
            lines[2].contains("k1 name") && lines[2].contains("3.0 MiB"),
            "{lines:?}"
        );
        assert!(lines[2].contains("1.0 MiB"), "{lines:?}");
        assert!(
            lines[3].contains("?") && lines[3].contains("10 B"),
            "{lines:?}"
        );
        assert_eq!(
            lines[4..],
            ["  consistency: postgres: consistent".to_owned()]
        );
    }
}
