//! The one error type that crosses every trait boundary in kastell.
//!
//! Every provider, platform and transport converts its own failures into
//! [`Error`] at the boundary. An error carries a [`ErrorKind`] (what went
//! wrong), whether retrying can help ([`Error::is_retryable`]), how long the
//! other side asked us to wait ([`Error::retry_after`]), whether the failed
//! request may already have taken effect ([`Error::may_have_taken_effect`]),
//! which provider and operation failed, a hint for the human or agent reading
//! it, free-form context and the underlying source.
//!
//! Errors never carry secrets: constructors take already-redacted text, and
//! [`crate::secret::Secret`] is the only way the contract moves tokens around.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A `Result` whose error is the kastell [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of which vendor or transport reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server, snapshot, backup or record does not exist.
    NotFound,
    /// Credentials are missing or were rejected (HTTP 401, SSH key refused).
    Unauthenticated,
    /// Credentials are valid but lack the right (HTTP 403, read-only token).
    PermissionDenied,
    /// The caller passed something malformed; fix the input, do not retry.
    InvalidInput,
    /// Configuration (environment, store, config file) is unusable.
    ConfigInvalid,
    /// The resource is busy, locked or in the wrong state for the request.
    InvalidState,
    /// The thing to be created already exists.
    AlreadyExists,
    /// The other side is throttling us.
    RateLimited,
    /// The operation did not finish within its deadline.
    Timeout,
    /// The service or host could not be reached or answered with a 5xx.
    Unavailable,
    /// A remote command ran and exited non-zero.
    CommandFailed,
    /// The SSH host presented a key different from the pinned one.
    HostKeyMismatch,
    /// The provider, platform or build does not support the operation.
    Unsupported,
    /// The operation was cancelled by the caller.
    Cancelled,
    /// A stored artifact failed its integrity check.
    Corrupt,
    /// Anything else: a bug, an unparseable answer, an I/O failure.
    Unexpected,
}

impl ErrorKind {
    /// Whether errors of this kind are worth retrying unless a mapping
    /// function says otherwise.
    pub const fn default_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Timeout | Self::Unavailable)
    }

    /// Whether a request that failed with this kind may nevertheless have been
    /// carried out by the other side, unless a mapping function knows better.
    ///
    /// A vendor that answers 401, 404, 429 or "locked" has rejected the request
    /// outright; a timeout or a 5xx leaves the outcome unknown.
    pub const fn default_may_have_taken_effect(self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Unavailable | Self::Unexpected | Self::CommandFailed
        )
    }

    /// A stable, lower-case name for the kind (`not_found`, `rate_limited`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::InvalidInput => "invalid_input",
            Self::ConfigInvalid => "config_invalid",
            Self::InvalidState => "invalid_state",
            Self::AlreadyExists => "already_exists",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::CommandFailed => "command_failed",
            Self::HostKeyMismatch => "host_key_mismatch",
            Self::Unsupported => "unsupported",
            Self::Cancelled => "cancelled",
            Self::Corrupt => "corrupt",
            Self::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user can do about an error, as a fact the product words for
/// its own surfaces (naming its flags, tools and settings). The error's
/// hint says the same in plain words that name no product, so a library
/// user still gets advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// This machine's disk is full or a quota was reached: free space or
    /// move the data directory.
    FreeLocalDisk,
    /// This machine's disk is read-only: use a writable data directory.
    WritableLocalDisk,
    /// The server did not come back: check its reachability.
    CheckReachability,
    /// The provider rate-limits: wait, or work on fewer servers at once.
    SlowDown,
    /// Another operation is still running on the server: wait for it.
    WaitForOtherOperation,
}

/// The kastell error: a kind, a message and everything a caller needs to
/// decide what to do next. One pointer wide, so `Result` stays small.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    may_have_taken_effect: bool,
    retry_after: Option<Duration>,
    provider: Option<Cow<'static, str>>,
    operation: Option<&'static str>,
    hint: Option<String>,
    advice: Option<Advice>,
    context: Vec<(&'static str, String)>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// Creates an error of `kind` with `message`, using the kind's defaults for
    /// retryability and for whether the request may have taken effect.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let inner = Inner {
            kind,
            message: message.into(),
            retryable: kind.default_retryable(),
            may_have_taken_effect: kind.default_may_have_taken_effect(),
            retry_after: None,
            provider: None,
            operation: None,
            hint: None,
            advice: None,
            context: Vec::new(),
            source: None,
        };
        Self {
            inner: Box::new(inner),
        }
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::InvalidState`].
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidState, message)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for [`ErrorKind::Unexpected`].
    pub fn unexpected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unexpected, message)
    }

    /// Shorthand for [`ErrorKind::Timeout`].
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Shorthand for [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ErrorKind::ConfigInvalid`].
    pub fn config_invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ConfigInvalid, message)
    }

    /// Wraps an I/O error as [`ErrorKind::Unexpected`] with `what` describing
    /// what was being done (for example `"writing servers.json"`).
    ///
    /// A local disk that refused the write (full, over a quota or a
    /// file-size limit, read-only) gets a hint saying so: the message alone
    /// (`No space left on device`) does not tell the user which machine ran
    /// out of room or what to do.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Unexpected,
        };
        let advice = local_disk_advice(err.kind());
        let error = Self::new(kind, format!("{what}: {err}")).with_source(err);
        match advice {
            Some((advice, hint)) => error.with_hint(hint).with_advice(advice),
            None => error,
        }
    }

    /// What the user can do, as a fact for the product to word.
    pub fn advice(&self) -> Option<Advice> {
        self.inner.advice
    }

    /// Sets what the user can do (see [`Advice`]); the hint should say it
    /// in plain words too.
    pub fn with_advice(mut self, advice: Advice) -> Self {
        self.inner.advice = Some(advice);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The human-readable message, without context or hint.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether retrying the same request can succeed.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable
    }

    /// Whether the failed request may nevertheless have been carried out.
    /// Non-idempotent operations are retried only when this is `false`.
    pub fn may_have_taken_effect(&self) -> bool {
        self.inner.may_have_taken_effect
    }

    /// How long the other side asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The provider, platform or transport that reported the error.
    pub fn provider(&self) -> Option<&str> {
        self.inner.provider.as_deref()
    }

    /// The operation that failed (`reboot`, `get_server`, `exec`, ...).
    pub fn operation(&self) -> Option<&'static str> {
        self.inner.operation
    }

    /// What the reader can do about it.
    pub fn hint(&self) -> Option<&str> {
        self.inner.hint.as_deref()
    }

    /// Key/value context attached along the way (server id, command, ...).
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.inner.context
    }

    /// Overrides whether the error is retryable.
    pub fn set_retryable(mut self, retryable: bool) -> Self {
        self.inner.retryable = retryable;
        self
    }

    /// Records that the request was provably never carried out (the
    /// connection was refused, or the vendor rejected it outright).
    pub fn never_applied(mut self) -> Self {
        self.inner.may_have_taken_effect = false;
        self
    }

    /// Records that the request may have been carried out.
    pub fn maybe_applied(mut self) -> Self {
        self.inner.may_have_taken_effect = true;
        self
    }

    /// Sets how long to wait before a retry.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.inner.retry_after = Some(after);
        self
    }

    /// Sets the provider, platform or transport id.
    pub fn with_provider(mut self, provider: impl Into<Cow<'static, str>>) -> Self {
        self.inner.provider = Some(provider.into());
        self
    }

    /// Sets the failed operation's name.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.inner.operation = Some(operation);
        self
    }

    /// Sets the hint, replacing any earlier one (and the advice that went
    /// with it: the new hint knows better).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.inner.hint = Some(hint.into());
        self.inner.advice = None;
        self
    }

    /// Sets the hint only when none is set yet.
    pub fn or_hint(mut self, hint: impl Into<String>) -> Self {
        if self.inner.hint.is_none() {
            self.inner.hint = Some(hint.into());
        }
        self
    }

    /// Appends one key/value pair of context. Never pass secrets.
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.inner.context.push((key, value.to_string()));
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Replaces the message, keeping everything else.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// A serialisable summary for JSON output (CLI `--json`, MCP results).
    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            kind: self.inner.kind,
            message: self.to_string(),
            hint: self.inner.hint.clone(),
            retryable: self.inner.retryable,
            retry_after_secs: self.inner.retry_after.map(|d| d.as_secs_f64()),
            provider: self.inner.provider.as_deref().map(str::to_owned),
            operation: self.inner.operation.map(str::to_owned),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        let mut parts: Vec<String> = Vec::new();
        if let Some(provider) = &self.inner.provider {
            parts.push(format!("provider: {provider}"));
        }
        if let Some(operation) = self.inner.operation {
            parts.push(format!("operation: {operation}"));
        }
        for (key, value) in &self.inner.context {
            parts.push(format!("{key}: {value}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("retryable", &self.inner.retryable)
            .field("may_have_taken_effect", &self.inner.may_have_taken_effect);
        if let Some(after) = self.inner.retry_after {
            d.field("retry_after", &after);
        }
        if let Some(provider) = &self.inner.provider {
            d.field("provider", provider);
        }
        if let Some(operation) = self.inner.operation {
            d.field("operation", &operation);
        }
        if let Some(hint) = &self.inner.hint {
            d.field("hint", hint);
        }
        if !self.inner.context.is_empty() {
            d.field("context", &self.inner.context);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn StdError + 'static))
    }
}

/// The JSON shape of an error in kastell's machine-readable output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorReport {
    /// The error kind.
    pub kind: ErrorKind,
    /// Message with its context, on one line.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Whether trying again later can help.
    pub retryable: bool,
    /// Seconds to wait before trying again, when the other side said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<f64>,
    /// Provider, platform or transport id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Failed operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// The advice and plain hint for an I/O error of `kind` that means this
/// machine's disk refused a write, if it is one.
fn local_disk_advice(kind: std::io::ErrorKind) -> Option<(Advice, &'static str)> {
    use std::io::ErrorKind as Io;
    match kind {
        Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => Some((
            Advice::FreeLocalDisk,
            "This machine's disk is full, or a quota or file-size limit was reached: free some space \
             (or move the data directory to a larger disk) and try again",
        )),
        Io::ReadOnlyFilesystem => Some((
            Advice::WritableLocalDisk,
            "This machine's disk is read-only here: use a writable data directory and try again",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_defaults_decide_retry_and_side_effects() {
        let limited = Error::new(ErrorKind::RateLimited, "slow down");
        assert!(limited.is_retryable());
        assert!(!limited.may_have_taken_effect());

        let timeout = Error::timeout("no answer");
        assert!(timeout.is_retryable());
        assert!(timeout.may_have_taken_effect());

        let denied = Error::new(ErrorKind::Unauthenticated, "bad token");
        assert!(!denied.is_retryable());
        assert!(!denied.may_have_taken_effect());

        let mismatch = Error::new(ErrorKind::HostKeyMismatch, "changed");
        assert!(!mismatch.is_retryable());
    }

    #[test]
    fn display_is_one_line_with_context_and_debug_has_fields() {
        let err = Error::not_found("server 42 does not exist")
            .with_provider("hetzner")
            .with_operation("get_server")
            .with_context("server", 42)
            .with_hint("check the id");
        let shown = err.to_string();
        assert_eq!(
            shown,
            "server 42 does not exist (provider: hetzner, operation: get_server, server: 42)"
        );
        assert!(!shown.contains('\n'));
        let debug = format!("{err:?}");
        assert!(debug.contains("NotFound"));
        assert!(debug.contains("check the id"));
    }

    #[test]
    fn overrides_and_report() {
        let err = Error::unavailable("connection refused")
            .never_applied()
            .with_retry_after(Duration::from_secs(3))
            .or_hint("first")
            .or_hint("second");
        assert!(!err.may_have_taken_effect());
        assert_eq!(err.hint(), Some("first"));
        let report = err.report();
        assert_eq!(report.kind, ErrorKind::Unavailable);
        assert_eq!(report.retry_after_secs, Some(3.0));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kind"], "unavailable");
        assert_eq!(json["retryable"], true);
    }

    #[test]
    fn io_errors_map_kinds_and_keep_source() {
        let err = Error::io(
            "reading servers.json",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "nope"),
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.message().starts_with("reading servers.json"));
        assert!(StdError::source(&err).is_some());
        assert_eq!(err.hint(), None, "no disk hint for other I/O errors");
    }

    #[test]
    fn a_full_or_limited_local_disk_says_so_in_the_hint() {
        for (raw, kind) in [
            (28, std::io::ErrorKind::StorageFull),
            (122, std::io::ErrorKind::QuotaExceeded),
            (27, std::io::ErrorKind::FileTooLarge),
        ] {
            let io = std::io::Error::from_raw_os_error(raw);
            assert_eq!(io.kind(), kind);
            let err = Error::io("writing backup.tar.zst", io);
            assert_eq!(err.kind(), ErrorKind::Unexpected);
            assert!(!err.is_retryable());
            assert!(err.hint().unwrap().contains("disk is full"), "{err:?}");
        }
        let err = Error::io("writing x", std::io::Error::from_raw_os_error(30));
        assert!(err.hint().unwrap().contains("read-only"), "{err:?}");
    }
}
