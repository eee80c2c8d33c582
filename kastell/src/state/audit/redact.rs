//! Keeping secrets out of the audit log: [`redact_args`].

use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Strings longer than this many characters are cut ([`cut`]).
pub const MAX_STRING_CHARS: usize = 1024;

/// Words that make a key sensitive wherever they appear in it
/// (case-insensitive): `token`, `accessToken`, `db_password`, ...
const SENSITIVE_WORDS: &[&str] = &[
    "token",
    "password",
    "passphrase",
    "secret",
    "credential",
    "authorization",
];

/// `args` with every value under a sensitive key replaced by
/// [`REDACTED`], recursively through objects and arrays, and every string
/// longer than [`MAX_STRING_CHARS`] cut ([`cut`]).
///
/// A key is sensitive when it contains (case-insensitive) `token`,
/// `password`, `passphrase`, `secret`, `credential` or `authorization`,
/// or when it is `key` or ends with `key` (`api_key`, `apiKey`,
/// `ssh_key`). Keys that merely start with or contain `key`/`keep`
/// elsewhere (`keep_last`, `key_id`, `keys_total`) are kept. A `null`
/// under a sensitive key stays `null`: it says only that nothing was
/// given.
pub fn redact_args(args: Value) -> Value {
    match args {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_sensitive_key(&k) && !v.is_null() {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact_args(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_args).collect()),
        Value::String(s) => Value::String(cut(&s)),
        other => other,
    }
}

/// Whether the value under `key` is redacted by [`redact_args`].
pub fn is_sensitive_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.ends_with("key") || SENSITIVE_WORDS.iter().any(|w| lower.contains(w))
}

/// `text` as is when it has at most [`MAX_STRING_CHARS`] characters, else
/// its first [`MAX_STRING_CHARS`] characters and a marker saying how many
/// were cut (`…[cut 3000 chars]`).
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_STRING_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => {
            let dropped = text[end..].chars().count();
            format!("{}…[cut {dropped} chars]", &text[..end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_keys_are_redacted_recursively() {
        let args = json!({
            "server": "web-1",
            "token": "t",
            "HCLOUD_TOKEN": "t",
            "accessToken": "t",
            "password": "p",
            "db_Password": {"nested": "p"},
            "passphrase": "p",
            "client_secret": "s",
            "key": "k",
            "api_key": "k",
            "apiKey": "k",
            "SSH_KEY": "k",
            "credentials": ["a", "b"],
            "Authorization": "Bearer x",
            "keep_last": 7,
            "keep_daily": 3,
            "key_id": "kid",
            "keys": 2,
            "missing_password": null,
            "targets": [{"name": "a", "secret": "s"}, {"name": "b"}],
            "options": {"repo": {"password_file": "/etc/pw", "path": "/srv"}},
        });
        let out = redact_args(args);
        for key in [
            "token",
            "HCLOUD_TOKEN",
            "accessToken",
            "password",
            "db_Password",
            "passphrase",
            "client_secret",
            "key",
            "api_key",
            "apiKey",
            "SSH_KEY",
            "credentials",
            "Authorization",
        ] {
            assert_eq!(out[key], REDACTED, "{key}: {out}");
        }
        assert_eq!(out["server"], "web-1");
        assert_eq!(out["keep_last"], 7);
        assert_eq!(out["keep_daily"], 3);
        assert_eq!(out["key_id"], "kid");
        assert_eq!(out["keys"], 2);
        assert!(out["missing_password"].is_null());
        assert_eq!(out["targets"][0]["secret"], REDACTED);
        assert_eq!(out["targets"][0]["name"], "a");
        assert_eq!(out["targets"][1]["name"], "b");
        assert_eq!(out["options"]["repo"]["password_file"], REDACTED);
        assert_eq!(out["options"]["repo"]["path"], "/srv");
        assert!(!out.to_string().contains("Bearer"));
    }

    #[test]
    fn long_strings_are_cut_with_a_marker() {
        let long = "é".repeat(MAX_STRING_CHARS + 10);
        let out = redact_args(json!({"note": long, "list": ["x".repeat(5000)]}));
        let note = out["note"].as_str().unwrap();
        assert!(note.ends_with("…[cut 10 chars]"), "{note}");
        assert!(note.starts_with(&"é".repeat(MAX_STRING_CHARS)));
        let item = out["list"][0].as_str().unwrap();
        assert!(item.ends_with("…[cut 3976 chars]"), "{item}");
        let exact = "y".repeat(MAX_STRING_CHARS);
        assert_eq!(cut(&exact), exact);
    }

    #[test]
    fn scalars_pass_through() {
        assert_eq!(redact_args(json!(5)), json!(5));
        assert_eq!(redact_args(json!("short")), json!("short"));
        assert_eq!(redact_args(Value::Null), Value::Null);
    }
}
