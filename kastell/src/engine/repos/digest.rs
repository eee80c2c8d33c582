//! `checksums.sha256`: the content checksums a push records beside a
//! backup's artifacts and a pull or verify compares, in `sha256sum`'s
//! format (the hashing itself is the backup engine's `Digesting`).

pub(crate) use crate::engine::backup::Digesting;

/// `sha256sum`'s text for `(name, hex)` pairs: one `HEX  NAME` line each.
pub(crate) fn checksum_lines<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    entries
        .into_iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// Reads `sha256sum` text back into `(name, hex)` pairs; `None` when a
/// line is not of that form.
pub(crate) fn parse_checksums(text: &str) -> Option<Vec<(String, String)>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (hex, name) = line.split_once("  ")?;
            let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then(|| (name.to_owned(), hex.to_ascii_lowercase()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_read_back() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned();
        let text = checksum_lines([("db.dump", hex.as_str())]);
        assert_eq!(
            parse_checksums(&text).unwrap(),
            vec![("db.dump".to_owned(), hex)]
        );
        assert!(parse_checksums("nothex  db.dump\n").is_none());
        assert!(parse_checksums("abc db.dump\n").is_none());
    }
}
