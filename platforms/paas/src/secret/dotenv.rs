//! Reading and setting variables of a dotenv file (`KEY=value` lines, as
//! Laravel's phpdotenv and Docker Compose read them).

/// The key and raw value of a dotenv line (`KEY=value`, `export KEY=value`),
/// `None` for blank lines and comments.
fn dotenv_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (key, value) = line.split_once('=')?;
    Some((key.trim(), value))
}

/// A dotenv value without its quotes (or, unquoted, without a trailing
/// ` # comment`) and surrounding white space.
fn dotenv_value(raw: &str) -> String {
    let raw = raw.trim();
    for quote in ['"', '\''] {
        if let Some(rest) = raw.strip_prefix(quote) {
            return rest.split(quote).next().unwrap_or_default().to_owned();
        }
    }
    raw.split(" #").next().unwrap_or_default().trim().to_owned()
}

/// The last non-empty value of `key` in a dotenv text.
pub(crate) fn dotenv_get(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(dotenv_line)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| dotenv_value(v))
        .rfind(|v| !v.is_empty())
}

/// `text` with `key` set to `value`: the first line defining it replaced,
/// later ones dropped, or a line appended when none does.
pub(crate) fn dotenv_set(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if dotenv_line(line).is_some_and(|(k, _)| k == key) {
            if !done {
                out.push_str(&format!("{key}={value}\n"));
                done = true;
            }
            continue;
        }
        out.push_str(line);
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// The keys of a comma-separated list, trimmed, empty ones dropped.
pub(crate) fn split_keys(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_are_read_and_set() {
        let text =
            "# c\nAPP_ID=x\nexport APP_KEY=\"base64:k1\"\nAPP_PREVIOUS_KEYS= a, b ,\nN=1 # note\n";
        assert_eq!(dotenv_get(text, "APP_KEY").as_deref(), Some("base64:k1"));
        assert_eq!(dotenv_get(text, "N").as_deref(), Some("1"));
        assert_eq!(dotenv_get(text, "MISSING"), None);
        assert_eq!(
            split_keys(&dotenv_get(text, "APP_PREVIOUS_KEYS").unwrap()),
            ["a", "b"]
        );
        let set = dotenv_set(text, "APP_PREVIOUS_KEYS", "k0");
        assert!(set.contains("\nAPP_PREVIOUS_KEYS=k0\nN=1"), "{set}");
        assert_eq!(dotenv_set("A=1", "B", "2"), "A=1\nB=2\n");
        assert_eq!(dotenv_set("B=1\nB=3\n", "B", "2"), "B=2\n");
    }
}
