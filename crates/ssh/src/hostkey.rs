//! Host-key fingerprints and the trust decision.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use kastell_core::{Error, ErrorKind, HostKeyInfo, HostKeyTrust, Result};

/// Formats a raw SHA-256 digest of a host key as OpenSSH does:
/// `SHA256:` followed by unpadded base64.
pub fn fingerprint_sha256(digest: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
}

/// Decides whether the presented key is trusted.
///
/// - A pinned fingerprint must match exactly, or the result is
///   [`ErrorKind::HostKeyMismatch`] (not retryable).
/// - With nothing pinned, `strict` refuses the host
///   ([`ErrorKind::PermissionDenied`]); otherwise the key is trusted on first
///   use with a warning.
pub(crate) fn decide(
    host: &str,
    presented: &str,
    key_type: &str,
    pinned: Option<&str>,
    strict: bool,
) -> Result<HostKeyInfo> {
    match pinned {
        Some(pin) if pin.trim() == presented => Ok(HostKeyInfo {
            fingerprint: presented.to_owned(),
            key_type: key_type.to_owned(),
            trust: HostKeyTrust::Pinned,
            warning: None,
        }),
        Some(pin) => Err(Error::new(
            ErrorKind::HostKeyMismatch,
            format!(
                "host key of {host} changed: pinned {}, presented {presented}",
                pin.trim()
            ),
        )
        .with_operation("connect")
        .with_provider("ssh")
        .with_hint(
            "This can mean someone is intercepting the connection. If the server was \
             rebuilt, verify the new fingerprint on its console (ssh-keygen -lf \
             /etc/ssh/ssh_host_ed25519_key.pub), then update the pinned hostKey in \
             servers.json.",
        )),
        None if strict => Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "host key of {host} is not pinned and KASTELL_STRICT_HOST_KEY refuses unknown hosts (presented {presented})"
            ),
        )
        .with_operation("connect")
        .with_provider("ssh")
        .with_hint(
            "Verify the fingerprint on the server's console, then pin it in the server \
             record (ssh.hostKey), or unset KASTELL_STRICT_HOST_KEY to trust on first use.",
        )),
        None => Ok(HostKeyInfo {
            fingerprint: presented.to_owned(),
            key_type: key_type.to_owned(),
            trust: HostKeyTrust::TrustedOnFirstUse,
            warning: Some(format!(
                "{host} was unknown: its host key {presented} ({key_type}) was trusted on first use and pinned"
            )),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_openssh() {
        // ssh-keygen prints SHA256 fingerprints as unpadded base64 of 32 bytes.
        let fp = fingerprint_sha256(&[0u8; 32]);
        assert_eq!(fp, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn pinned_match_mismatch_strict_and_first_use() {
        let ok = decide("h", "SHA256:a", "ssh-ed25519", Some("SHA256:a"), true).unwrap();
        assert_eq!(ok.trust, HostKeyTrust::Pinned);
        assert!(ok.warning.is_none());

        let err = decide("h", "SHA256:b", "ssh-ed25519", Some("SHA256:a"), false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostKeyMismatch);
        assert!(!err.is_retryable());
        assert!(err.message().contains("SHA256:a") && err.message().contains("SHA256:b"));

        let err = decide("h", "SHA256:b", "ssh-ed25519", None, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(!err.is_retryable());

        let tofu = decide("h", "SHA256:b", "ssh-ed25519", None, false).unwrap();
        assert_eq!(tofu.trust, HostKeyTrust::TrustedOnFirstUse);
        assert!(tofu.warning.unwrap().contains("SHA256:b"));
    }
}
