//! Reading and rendering `servers.json`.
//!
//! The file is a JSON array. Each element that parses as a
//! [`ServerRecord`] becomes one; any other element is kept verbatim as
//! [`Entry::Unreadable`] and written back unchanged, so kastell never loses
//! data it does not understand.

use std::path::Path;

use kastell_core::{Error, Result};
use serde_json::Value;

use super::record::ServerRecord;

/// One element of the `servers.json` array.
// Nearly every entry is a record, so boxing it would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    /// A well-formed record.
    Record(ServerRecord),
    /// An element kastell cannot read; preserved on rewrite.
    Unreadable(Value),
}

impl Entry {
    fn field(&self, key: &str) -> Option<&str> {
        match self {
            Self::Record(r) => Some(match key {
                "name" => r.name.as_str(),
                "ip" => r.ip.as_str(),
                "id" => r.id.as_str(),
                _ => return None,
            }),
            Self::Unreadable(v) => v.get(key).and_then(Value::as_str),
        }
    }

    /// The `name` field, if it is a string.
    pub(crate) fn name(&self) -> Option<&str> {
        self.field("name")
    }

    /// The `ip` field, if it is a string.
    pub(crate) fn ip(&self) -> Option<&str> {
        self.field("ip")
    }

    /// The `id` field, if it is a string.
    pub(crate) fn id(&self) -> Option<&str> {
        self.field("id")
    }
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::config_invalid(format!("servers.json corrupt ({what}): {}", path.display())).with_hint(
        format!(
            "Check {} manually: fix it or restore it from a backup. kastell will not modify it while it is unreadable.",
            path.display()
        ),
    )
}

/// Reads `path`. A missing file, or one holding only white space, is an
/// empty fleet. Refuses what is not a regular file (a FIFO would block
/// every command), and refuses with `ConfigInvalid` (naming the file and how to
/// fix it) when the content is not UTF-8, not JSON or not an array.
pub(crate) fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let Some(bytes) = super::read_regular(path)? else {
        return Ok(Vec::new());
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(path, "not UTF-8 text"))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        corrupt(
            path,
            &format!("invalid JSON at line {} column {}", e.line(), e.column()),
        )
    })?;
    let Value::Array(items) = value else {
        return Err(corrupt(path, "expected a JSON array of servers"));
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match serde_json::from_value::<ServerRecord>(item.clone()) {
            Ok(record) => Entry::Record(record),
            Err(e) => {
                tracing::warn!(
                    "servers.json entry #{} is not a valid server record ({e}); keeping it unchanged and ignoring it",
                    index + 1
                );
                Entry::Unreadable(item)
            }
        })
        .collect())
}

/// The well-formed records among `entries`, in file order.
pub(crate) fn records(entries: &[Entry]) -> Vec<ServerRecord> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some(r.clone()),
            Entry::Unreadable(_) => None,
        })
        .collect()
}

/// How an entry is written: records field by field in their declared
/// order (then unknown fields), unreadable elements verbatim.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Out<'a> {
    Record(&'a ServerRecord),
    Verbatim(&'a Value),
}

/// `entries` as pretty-printed JSON (2-space indent, trailing newline),
/// the format the original writes.
pub(crate) fn render(entries: &[Entry]) -> Result<Vec<u8>> {
    let out: Vec<Out<'_>> = entries
        .iter()
        .map(|e| match e {
            Entry::Record(r) => Out::Record(r),
            Entry::Unreadable(v) => Out::Verbatim(v),
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&out)
        .map_err(|e| Error::unexpected(format!("encoding servers.json: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::ErrorKind;

    fn write(dir: &Path, content: &str) -> std::path::PathBuf {
        let path = dir.join("servers.json");
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn missing_and_blank_files_are_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            read_entries(&tmp.path().join("servers.json"))
                .unwrap()
                .is_empty()
        );
        let path = write(tmp.path(), " \n");
        assert!(read_entries(&path).unwrap().is_empty());
    }

    #[test]
    fn invalid_json_and_non_arrays_are_config_errors_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        for (content, what) in [
            ("[{\"id\":", "invalid JSON"),
            ("{\"servers\":[]}", "expected a JSON array"),
            ("42", "expected a JSON array"),
        ] {
            let path = write(tmp.path(), content);
            let err = read_entries(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{content}");
            assert!(err.message().contains(what), "{err}");
            assert!(err.message().contains(&path.display().to_string()));
            assert!(err.hint().unwrap().contains("manually"));
        }
        let path = tmp.path().join("servers.json");
        std::fs::write(&path, [b'[', 0xff, b']']).unwrap();
        assert_eq!(
            read_entries(&path).unwrap_err().kind(),
            ErrorKind::ConfigInvalid
        );
    }

    #[test]
    fn unreadable_elements_are_kept_verbatim() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            r#"[{"id":"1","name":"abc","ip":"203.0.113.1"}, {"name":"broken"}, 7]"#,
        );
        let entries = read_entries(&path).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(records(&entries).len(), 1);
        assert_eq!(entries[1].name(), Some("broken"));
        assert_eq!(entries[2].name(), None);
        let back: Value = serde_json::from_slice(&render(&entries).unwrap()).unwrap();
        assert_eq!(back[1], serde_json::json!({"name":"broken"}));
        assert_eq!(back[2], 7);
    }

    #[test]
    fn render_uses_two_space_indent() {
        let entries = vec![Entry::Record(ServerRecord::new("1", "abc", "203.0.113.1"))];
        let text = String::from_utf8(render(&entries).unwrap()).unwrap();
        assert!(text.starts_with("[\n  {\n    \"id\": \"1\""), "{text}");
        assert!(text.ends_with("]\n"));
    }
}
