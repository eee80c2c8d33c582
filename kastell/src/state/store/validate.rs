//! Input validation for server records: names, IPv4 addresses and the
//! other strings `server add` accepts.

use std::net::Ipv4Addr;

use kastell_core::{Error, Result};

use crate::env::Env;

/// The environment switch that allows private, reserved and (kastell
/// extension) loopback addresses.
pub const ALLOW_PRIVATE_IPS_VAR: &str = "KASTELL_ALLOW_PRIVATE_IPS";

/// IP values the original tool writes while a server is being provisioned.
/// They are exempt from the duplicate-IP check and from format validation
/// in the store.
pub const SENTINEL_IPS: &[&str] = &["", "pending", "0.0.0.0"];

const NAME_HINT: &str = "Use 3-63 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-' (for example web-1)";

/// Shows a user-supplied value safely in a message: escaped and cut to 64
/// characters, so hostile input cannot forge lines or flood the terminal.
pub(crate) fn shown(value: &str) -> String {
    let cut: String = value.chars().take(64).collect();
    let mut out = format!("{cut:?}");
    if value.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Shows a user-supplied value in a message as is when it is short and
/// printable, else escaped and cut as [`shown`] does.
pub(crate) fn display_safe(value: &str) -> String {
    if value.chars().count() <= 64 && !value.chars().any(char::is_control) {
        value.to_owned()
    } else {
        shown(value)
    }
}

/// Checks a server name against the original rule: 3 to 63 characters,
/// `^[a-z][a-z0-9-]*[a-z0-9]$`. Refuses anything else as `InvalidInput`
/// with a hint describing the rule.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |why: &str| {
        Error::invalid_input(format!("Invalid server name {}: {why}", shown(name)))
            .with_hint(NAME_HINT)
    };
    let len = name.len();
    if !(3..=63).contains(&len) {
        return Err(invalid("it must be 3 to 63 characters long"));
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_lowercase() {
        return Err(invalid("it must start with a lower-case letter"));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err(invalid(
            "only lower-case letters, digits and '-' are allowed",
        ));
    }
    if bytes[len - 1] == b'-' {
        return Err(invalid("it must not end with '-'"));
    }
    Ok(())
}

/// Whether `ip` is one of the provisioning placeholders in [`SENTINEL_IPS`].
pub fn is_sentinel_ip(ip: &str) -> bool {
    SENTINEL_IPS.contains(&ip)
}

/// Parses a dotted-quad IPv4 address strictly: exactly four decimal octets
/// of one to three digits, no leading zeros, each 0-255, nothing else (no
/// IPv6, no white space, no shorthand forms like `10.1`). Refuses anything
/// else with `Invalid IP address format`.
pub fn parse_ipv4_strict(ip: &str) -> Result<Ipv4Addr> {
    let invalid = || {
        Error::invalid_input(format!("Invalid IP address format: {}", shown(ip)))
            .with_hint("Use a public IPv4 address in dotted form, for example 203.0.113.10")
    };
    let mut octets = [0u8; 4];
    let mut parts = ip.split('.');
    for slot in &mut octets {
        let part = parts.next().ok_or_else(invalid)?;
        let digits_only = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_only || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
            return Err(invalid());
        }
        *slot = part.parse::<u8>().map_err(|_| invalid())?;
    }
    if parts.next().is_some() {
        return Err(invalid());
    }
    Ok(Ipv4Addr::from(octets))
}

/// Whether private, reserved and loopback addresses are allowed, i.e.
/// whether the switch `KASTELL_ALLOW_PRIVATE_IPS` is on in `env`
/// (`true/1/yes/on`, like every `KASTELL_*` switch).
pub fn allow_private_ips(env: &Env) -> bool {
    env.is_on(ALLOW_PRIVATE_IPS_VAR)
}

/// The original tool's `assertValidIp`: a strict dotted quad
/// ([`parse_ipv4_strict`]) that is not `0.0.0.0` and, unless
/// `allow_private` is set, not loopback (127/8), private (10/8, 172.16/12,
/// 192.168/16), link-local (169.254/16), multicast (224/4) or reserved
/// (240/4 and above), and (beyond the original) not carrier-grade NAT
/// (100.64/10, RFC 6598) or benchmarking (198.18/15, RFC 2544): none of
/// them reaches a server on the internet.
///
/// DEVIATION from the original: there, `127.*` is rejected even when
/// `KASTELL_ALLOW_PRIVATE_IPS=true`. Here that switch also allows loopback,
/// because the sandbox and the test suite run a private sshd on 127.0.0.1.
/// `0.0.0.0` is always refused.
pub fn validate_ip(ip: &str, allow_private: bool) -> Result<Ipv4Addr> {
    let addr = parse_ipv4_strict(ip)?;
    if addr.is_unspecified() {
        return Err(
            Error::invalid_input("IP address 0.0.0.0 is not allowed").with_hint(
                "Use the server's public IPv4 address; 0.0.0.0 is a provisioning placeholder",
            ),
        );
    }
    if allow_private {
        return Ok(addr);
    }
    let allow_hint = format!("Set {ALLOW_PRIVATE_IPS_VAR}=true to allow.");
    if addr.is_loopback() {
        return Err(
            Error::invalid_input(format!("Loopback IP address not allowed: {addr}")).with_hint(
                format!(
                    "{allow_hint} (kastell also allows loopback with it, for a local test sshd)"
                ),
            ),
        );
    }
    let [a, b, ..] = addr.octets();
    let reserved = a == 10
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 169 && b == 254)
        || (a == 100 && (64..=127).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 224;
    if reserved {
        return Err(Error::invalid_input(format!(
            "Private/reserved IP address not allowed: {addr}"
        ))
        .with_hint(allow_hint));
    }
    Ok(addr)
}

/// Checks a tag (`prod`, `eu-staging`): 1 to 32 lower-case letters,
/// digits, `-` and `_`, starting with a letter or digit. Refuses anything
/// else as `InvalidInput`, saying the rule.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = (1..=32).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(
            Error::invalid_input(format!("Invalid tag {}", shown(tag))).with_hint(
                "Use 1-32 lower-case letters, digits, '-' and '_', starting with a letter or digit (for example prod)",
            ),
        )
    }
}

/// Checks a record read from `servers.json` by the rules `server add`
/// applies, so a hand-edited or hostile file cannot aim kastell at
/// something `server add` would have refused: the name rule, the IP as a
/// strict dotted quad (never a host name) outside private and reserved
/// ranges unless `allow_private` (a provisioning sentinel passes: nothing
/// connects to it), and every tag. The error names the record and says
/// how to fix it.
pub fn validate_record(record: &super::ServerRecord, allow_private: bool) -> Result<()> {
    let checked = validate_name(&record.name)
        .and_then(|()| {
            if is_sentinel_ip(&record.ip) {
                Ok(())
            } else {
                validate_ip(&record.ip, allow_private).map(|_| ())
            }
        })
        .and_then(|()| record.tags.iter().try_for_each(|t| validate_tag(t)));
    checked.map_err(|e| {
        let hint = e.hint().unwrap_or_default().to_owned();
        Error::new(
            e.kind(),
            format!(
                "Server {} in servers.json is not valid: {}",
                display_safe(&record.name),
                e.message()
            ),
        )
        .with_hint(format!(
            "Fix the record in servers.json, or remove it and add it again with kastell server add. {hint}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::ErrorKind;

    #[test]
    fn records_read_from_the_file_follow_server_adds_rules() {
        use super::super::ServerRecord;
        let good = ServerRecord::new("manual-1", "web-1", "203.0.113.10");
        assert!(validate_record(&good, false).is_ok());
        let pending = ServerRecord::new("manual-1", "web-1", "pending");
        assert!(validate_record(&pending, false).is_ok());
        for (name, ip, tags, why) in [
            ("web-1", "example.com", vec![], "Invalid IP address format"),
            ("web-1", "10.0.0.5", vec![], "Private/reserved"),
            ("web-1", "100.64.1.1", vec![], "Private/reserved"),
            ("web-1", "127.0.0.1", vec![], "Loopback"),
            (
                "WEB\u{1b}[2J",
                "203.0.113.10",
                vec![],
                "Invalid server name",
            ),
            ("web-1", "203.0.113.10", vec!["Prod"], "Invalid tag"),
        ] {
            let mut record = ServerRecord::new("manual-1", name, ip);
            record.tags = tags.into_iter().map(str::to_owned).collect();
            let err = validate_record(&record, false).unwrap_err();
            assert!(
                err.message().contains(why),
                "{name} {ip}: {}",
                err.message()
            );
            assert!(
                err.message().contains("in servers.json"),
                "{}",
                err.message()
            );
            assert!(!err.message().contains('\u{1b}'), "{}", err.message());
            assert!(err.hint().unwrap().contains("server add"));
        }
        let private = ServerRecord::new("manual-1", "web-1", "10.0.0.5");
        assert!(validate_record(&private, true).is_ok());
    }

    #[test]
    fn tags_follow_their_rule() {
        for good in ["prod", "eu-staging", "a", "db_1", "1st"] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "Prod", "-x", "_x", "a b", "x\n", &"a".repeat(33), "é"] {
            assert_eq!(
                validate_tag(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_follow_the_original_rule() {
        for good in ["web", "web-1", "a1b", "coolify-prod-01", &"a".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good:?} refused");
        }
        let bad = [
            "",
            "ab",
            "a",
            &"a".repeat(64),
            "1web",
            "-web",
            "web-",
            "Web-1",
            "web_1",
            "web 1",
            "web.1",
            "wéb-1",
            "web\n1",
            "web;rm",
            "../etc",
            "web/1",
            "\u{0}web",
            "ab\u{202e}c",
        ];
        for name in bad {
            let err = validate_name(name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
            assert!(err.hint().unwrap().contains("3-63"), "{name:?}");
            assert!(!err.message().contains('\n'), "{name:?}");
        }
    }

    #[test]
    fn hostile_values_are_escaped_and_cut_in_messages() {
        let long = "x\n".repeat(500);
        let err = validate_name(&long).unwrap_err();
        assert!(err.message().len() < 200);
        assert!(!err.message().contains('\n'));
    }

    #[test]
    fn strict_ipv4_parsing() {
        assert_eq!(
            parse_ipv4_strict("203.0.113.10").unwrap(),
            Ipv4Addr::new(203, 0, 113, 10)
        );
        assert!(parse_ipv4_strict("0.0.0.0").is_ok());
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.256",
            "1.2.3.-1",
            "1.2.3.+4",
            " 1.2.3.4",
            "1.2.3.4 ",
            "1..3.4",
            "1.2.3.4.",
            "::1",
            "2001:db8::1",
            "1.2.3.4/24",
            "0x7f.0.0.1",
            "1.2.3.1000",
            "１.2.3.4",
            "pending",
            "localhost",
        ] {
            let err = parse_ipv4_strict(bad).unwrap_err();
            assert!(
                err.message().starts_with("Invalid IP address format"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn private_and_reserved_ranges_need_the_switch() {
        for public in [
            "203.0.113.10",
            "198.51.100.7",
            "8.8.8.8",
            "172.15.0.1",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "198.17.255.255",
            "198.20.0.1",
        ] {
            assert!(validate_ip(public, false).is_ok(), "{public}");
        }
        for private in [
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            let err = validate_ip(private, false).unwrap_err();
            assert!(
                err.message()
                    .starts_with("Private/reserved IP address not allowed"),
                "{private}"
            );
            assert!(
                err.hint()
                    .unwrap()
                    .contains("KASTELL_ALLOW_PRIVATE_IPS=true")
            );
            assert!(validate_ip(private, true).is_ok(), "{private}");
        }
    }

    #[test]
    fn loopback_is_allowed_only_with_the_switch_and_zero_never() {
        let err = validate_ip("127.0.0.1", false).unwrap_err();
        assert!(err.message().contains("Loopback"));
        assert!(validate_ip("127.0.0.1", true).is_ok());
        assert!(validate_ip("0.0.0.0", false).is_err());
        assert!(validate_ip("0.0.0.0", true).is_err());
    }

    #[test]
    fn the_switch_is_read_from_env() {
        assert!(allow_private_ips(&Env::from_pairs([(
            ALLOW_PRIVATE_IPS_VAR,
            "true"
        )])));
        assert!(allow_private_ips(&Env::from_pairs([(
            ALLOW_PRIVATE_IPS_VAR,
            " TRUE "
        )])));
        // The same words as every other KASTELL_* switch (`1` used to be
        // ignored here while KASTELL_STRICT_HOST_KEY=1 worked).
        assert!(allow_private_ips(&Env::from_pairs([(
            ALLOW_PRIVATE_IPS_VAR,
            "1"
        )])));
        assert!(!allow_private_ips(&Env::from_pairs([(
            ALLOW_PRIVATE_IPS_VAR,
            "off"
        )])));
        assert!(!allow_private_ips(&Env::from_pairs::<&str, &str>([])));
    }

    #[test]
    fn sentinels() {
        for s in ["", "pending", "0.0.0.0"] {
            assert!(is_sentinel_ip(s));
        }
        assert!(!is_sentinel_ip("203.0.113.1"));
    }
}
