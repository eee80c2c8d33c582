//! A string that must never be shown: API tokens and similar credentials.

use std::fmt;

/// Holds a credential. `Debug` and `Display` print `[redacted]`; the value is
/// reachable only through [`Secret::expose`], which call sites use at the one
/// place the credential leaves the process (an `Authorization` header).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential. Leading and trailing white space is trimmed, as a
    /// token pasted into an environment variable often carries a newline.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        Self(value.trim().to_owned())
    }

    /// Reads a credential from the environment variable `name`. An unset,
    /// empty or white-space-only variable gives `None`.
    pub fn from_env(name: &str) -> Option<Self> {
        let value = std::env::var(name).ok()?;
        let secret = Self::new(value);
        (!secret.0.is_empty()).then_some(secret)
    }

    /// The credential itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let secret = Secret::new("  hcloud-abc123\n");
        assert_eq!(secret.expose(), "hcloud-abc123");
        assert!(!format!("{secret:?}").contains("abc123"));
        assert!(!format!("{secret}").contains("abc123"));
        assert!(!format!("{:?}", Some(secret)).contains("abc123"));
    }
}
