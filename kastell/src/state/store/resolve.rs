//! Choosing a server from the fleet for a command.
//!
//! The original's MCP rules, with its quirks fixed: an empty or white-space
//! query counts as absent (so one server is still auto-selected), and a
//! query is matched by exact IP first, then by exact name.

use kastell_core::{Error, ErrorKind, Result};

use super::record::ServerRecord;
use super::validate::display_safe;

/// The record whose IP equals `query`, else the one whose name equals it
/// (exact, case-sensitive), among `records`. `None` when neither matches.
pub fn find<'a>(records: &'a [ServerRecord], query: &str) -> Option<&'a ServerRecord> {
    pick(&records.iter().collect::<Vec<_>>(), query)
}

fn pick<'a>(records: &[&'a ServerRecord], query: &str) -> Option<&'a ServerRecord> {
    records
        .iter()
        .find(|r| r.ip == query)
        .or_else(|| records.iter().find(|r| r.name == query))
        .copied()
}

/// The most server names a hint lists.
pub(crate) const MAX_LISTED_NAMES: usize = 10;

/// The servers a hint points to: `<label>: a, b, c` when there are at most
/// [`MAX_LISTED_NAMES`], else how many there are and where to see them all
/// (a fleet of hundreds would otherwise fill the hint).
pub(crate) fn available_hint(label: &str, names: &[&str]) -> String {
    if names.len() <= MAX_LISTED_NAMES {
        format!("{label}: {}", names.join(", "))
    } else {
        format!(
            "{} servers are known; list them with `kastell server list` (MCP: server_info list)",
            names.len()
        )
    }
}

fn names<'a>(records: &[&'a ServerRecord]) -> Vec<&'a str> {
    records.iter().map(|r| r.name.as_str()).collect()
}

/// Resolves `query` to one server.
///
/// Records with a provider this build does not know are kept in the file
/// but excluded here, with a warning. Then: no usable servers gives
/// `NotFound` "No servers found"; an absent, empty or white-space query
/// auto-selects the only server, or refuses with "Multiple servers found.
/// Specify which server to use." listing them; a query matches by exact IP
/// first, then exact name, else `NotFound` "Server not found: <q>" listing
/// the available servers. Hints list at most [`MAX_LISTED_NAMES`] names
/// (else they say how many there are). A query naming an excluded record
/// is refused with `InvalidState`, saying why.
pub fn resolve<'a>(records: &'a [ServerRecord], query: Option<&str>) -> Result<&'a ServerRecord> {
    let (usable, excluded): (Vec<&ServerRecord>, Vec<&ServerRecord>) =
        records.iter().partition(|r| r.unknown_provider().is_none());
    for r in &excluded {
        tracing::warn!(
            "skipping server {:?}: unknown provider {:?}",
            r.name,
            r.unknown_provider().unwrap_or_default()
        );
    }
    let query = query.map(str::trim).filter(|q| !q.is_empty());
    if let Some(q) = query {
        if let Some(r) = pick(&usable, q) {
            return Ok(r);
        }
        if let Some(r) = pick(&excluded, q) {
            let provider = r.unknown_provider().unwrap_or_default();
            return Err(Error::invalid_state(format!(
                "Server {:?} uses unknown provider {provider:?} and cannot be used",
                r.name
            ))
            .with_hint(format!(
                "Fix its provider in servers.json, or remove it with: kastell server remove {} --force",
                r.name
            )));
        }
    }
    if usable.is_empty() {
        return Err(Error::not_found("No servers found")
            .with_hint("Add one with: kastell server add --name <name> --ip <ip>"));
    }
    match query {
        None if usable.len() == 1 => Ok(usable[0]),
        None => Err(Error::new(
            ErrorKind::InvalidInput,
            "Multiple servers found. Specify which server to use.",
        )
        .with_hint(available_hint("Available", &names(&usable)))),
        Some(q) => Err(
            Error::not_found(format!("Server not found: {}", display_safe(q)))
                .with_hint(available_hint("Available servers", &names(&usable))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, ip: &str) -> ServerRecord {
        let mut r = ServerRecord::new(format!("id-{name}"), name, ip);
        r.provider = Some("hetzner".into());
        r
    }

    #[test]
    fn no_servers_is_not_found_with_an_add_hint() {
        for q in [None, Some(""), Some("web-1")] {
            let err = resolve(&[], q).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert_eq!(err.message(), "No servers found");
            assert!(err.hint().unwrap().contains("kastell server add"));
        }
    }

    #[test]
    fn absent_or_blank_query_auto_selects_the_only_server() {
        let fleet = [rec("web-1", "203.0.113.1")];
        for q in [None, Some(""), Some("   "), Some("\t\n")] {
            assert_eq!(resolve(&fleet, q).unwrap().name, "web-1", "{q:?}");
        }
    }

    #[test]
    fn absent_query_with_several_servers_lists_them() {
        let fleet = [rec("web-1", "203.0.113.1"), rec("db-1", "203.0.113.2")];
        for q in [None, Some("")] {
            let err = resolve(&fleet, q).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(
                err.message(),
                "Multiple servers found. Specify which server to use."
            );
            assert_eq!(err.hint(), Some("Available: web-1, db-1"));
        }
    }

    #[test]
    fn exact_ip_then_exact_name() {
        let fleet = [rec("web-1", "203.0.113.1"), rec("db-1", "203.0.113.2")];
        assert_eq!(resolve(&fleet, Some("203.0.113.2")).unwrap().name, "db-1");
        assert_eq!(resolve(&fleet, Some("web-1")).unwrap().name, "web-1");
        assert_eq!(resolve(&fleet, Some(" web-1 ")).unwrap().name, "web-1");
        for miss in ["WEB-1", "web", "203.0.113", "203.0.113.3"] {
            let err = resolve(&fleet, Some(miss)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert_eq!(err.message(), format!("Server not found: {miss}"));
            assert_eq!(err.hint(), Some("Available servers: web-1, db-1"));
        }
        let err = resolve(&fleet, Some("x\nforged: line")).unwrap_err();
        assert!(!err.message().contains('\n'));
    }

    #[test]
    fn hints_list_a_few_names_and_count_many() {
        let fleet: Vec<ServerRecord> = (0..MAX_LISTED_NAMES)
            .map(|i| rec(&format!("web-{i}"), &format!("203.0.113.{}", i + 1)))
            .collect();
        let all = (0..MAX_LISTED_NAMES)
            .map(|i| format!("web-{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let err = resolve(&fleet, Some("ghost")).unwrap_err();
        assert_eq!(
            err.hint(),
            Some(format!("Available servers: {all}").as_str())
        );
        let err = resolve(&fleet, None).unwrap_err();
        assert_eq!(err.hint(), Some(format!("Available: {all}").as_str()));

        let mut many = fleet;
        many.push(rec("web-x", "203.0.113.200"));
        for err in [
            resolve(&many, Some("ghost")).unwrap_err(),
            resolve(&many, None).unwrap_err(),
        ] {
            let hint = err.hint().unwrap();
            assert_eq!(
                hint,
                "11 servers are known; list them with `kastell server list` (MCP: server_info list)"
            );
            assert!(!hint.contains("web-0"), "{hint}");
        }
    }

    #[test]
    fn ip_match_wins_over_a_name_equal_to_another_servers_ip() {
        // Names can't look like IPs under the add rules, but files written
        // by hand can contain anything: the IP match must still win.
        let fleet = [
            rec("203.0.113.2", "203.0.113.9"),
            rec("db-1", "203.0.113.2"),
        ];
        assert_eq!(resolve(&fleet, Some("203.0.113.2")).unwrap().name, "db-1");
        assert_eq!(find(&fleet, "203.0.113.2").unwrap().name, "db-1");
    }

    #[test]
    fn unknown_provider_records_are_excluded_and_explained() {
        let mut odd = rec("odd-1", "203.0.113.5");
        odd.provider = Some("acme".into());
        let mut plain = rec("plain-1", "203.0.113.6");
        plain.provider = None;
        let fleet = [odd, plain];
        // Only one usable server: auto-selected despite two records.
        assert_eq!(resolve(&fleet, None).unwrap().name, "plain-1");
        let err = resolve(&fleet, Some("odd-1")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(err.message().contains("acme"));
        let err = resolve(&fleet, Some("nope")).unwrap_err();
        assert_eq!(err.hint(), Some("Available servers: plain-1"));

        let only_odd = [fleet[0].clone()];
        assert_eq!(
            resolve(&only_odd, None).unwrap_err().message(),
            "No servers found"
        );
    }
}
