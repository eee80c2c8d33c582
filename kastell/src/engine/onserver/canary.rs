//! The append-only canary an on-server install runs on the server itself,
//! with the server's own credentials, before it writes anything there:
//! the storage must refuse that login a delete and an overwrite (or keep
//! what an overwrite replaces), else the install stops. It is the
//! operator-side canary's check (`kastell doctor --repo`, see
//! [`kastell_repo::append_only`]) made from where the backups will come
//! from, and its verdict is the same [`CanaryReport`].
//!
//! On SFTP the server's own `ssh` reaches the REST server its key is
//! forced into, and kastell sends the same three attempts through it
//! ([`probe_rclone`], over [`super::rest`]).
//!
//! On S3 the server runs `curl` (SigV4): it writes
//! [`CANARY_NAME`] at its repository's root unless it is there
//! (`If-None-Match: *`), overwrites it (a version id in the answer means
//! the bucket kept the earlier version) and deletes it. The credentials
//! reach the script on its standard input and curl through its config on
//! a pipe, never on a command line.

use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::RepoLocation;
use kastell_repo::append_only::{Attempt, CANARY_CONTENT, CANARY_NAME, CanaryReport};

use super::files::Layout;
use super::remote::Root;
use super::rest::{self, Request};
use super::sftp::{NOT_FORCED_STATUS, SftpTarget};

/// The shell script (run as root, the server's environment file on its
/// standard input) that tries the canary on S3 and prints
/// `overwrite=refused|allowed|kept` and `delete=refused|allowed`. Exits
/// non-zero, saying why on stderr, when it proves nothing (no curl, the
/// canary could not even be written, an unexpected answer).
const S3_SCRIPT: &str = r#"set -u
umask 077
vars=$(cat) || exit 90
eval "$vars" || exit 90
command -v curl >/dev/null 2>&1 || { echo "curl is not installed on the server: the install's canary needs it (apt-get install -y curl)" >&2; exit 91; }
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
headers=$(mktemp) || exit 92
trap 'rm -f "$headers"' EXIT
request() {
  method=$1
  shift
  printf 'user = "%s:%s"\n' "$(esc "$AWS_ACCESS_KEY_ID")" "$(esc "$AWS_SECRET_ACCESS_KEY")" |
    curl -sS -K - -m 30 -o /dev/null -D "$headers" -w '%{http_code}' \
      --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X "$method" "$@" "$KASTELL_CANARY_URL"
}
text='kastell on-server canary: the install tries to delete and overwrite this object'
code=$(request PUT -H 'If-None-Match: *' --data-binary "$text") || { echo "the storage did not answer the canary's write" >&2; exit 93; }
case $code in
  2??|412) ;;
  *) echo "the storage refused to let this server write the canary (HTTP $code): the key may not write its own prefix" >&2; exit 94 ;;
esac
code=$(request PUT --data-binary "$text") || exit 93
version=$(tr -d '\r' < "$headers" | sed -n 's/^[Xx]-[Aa]mz-[Vv]ersion-[Ii][Dd]: *//p' | head -n 1)
case $code in
  2??) if [ -n "$version" ] && [ "$version" != null ]; then echo overwrite=kept; else echo overwrite=allowed; fi ;;
  403) echo overwrite=refused ;;
  *) echo "the storage answered the canary's overwrite with HTTP $code" >&2; exit 95 ;;
esac
code=$(request DELETE) || exit 93
case $code in
  2??) echo delete=allowed ;;
  403) echo delete=refused ;;
  *) echo "the storage answered the canary's delete with HTTP $code" >&2; exit 95 ;;
esac
"#;

/// The canary's URL (path style) at the root of the S3 repository
/// `location`; `None` for a repository not on S3.
pub(crate) fn s3_url(location: &RepoLocation) -> Option<String> {
    let RepoLocation::S3 {
        endpoint,
        bucket,
        prefix,
    } = location
    else {
        return None;
    };
    let endpoint = endpoint.trim_end_matches('/');
    Some(if prefix.is_empty() {
        format!("{endpoint}/{bucket}/{CANARY_NAME}")
    } else {
        format!("{endpoint}/{bucket}/{prefix}/{CANARY_NAME}")
    })
}

/// Runs the canary on the server `root` reaches with the server's own S3
/// credentials (`env`: the environment file's text, which sets them) at
/// its repository `location`, and returns what the storage did. Fails,
/// proving nothing, when the script could not run the canary.
pub(crate) async fn probe_s3(
    root: Root<'_>,
    env: &str,
    location: &RepoLocation,
) -> Result<CanaryReport> {
    let url = s3_url(location).ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!("{location} is not on S3: the S3 canary cannot run there"),
        )
    })?;
    let stdin = format!("{env}\nKASTELL_CANARY_URL={}\n", kastell_core::quote(&url));
    let out = root.run(S3_SCRIPT, Some(stdin)).await.map_err(|e| {
        let message = format!(
            "the append-only canary could not run on the server: {}",
            e.message()
        );
        e.with_message(message).with_hint(
            "The install checks from the server, with its own key, that the storage refuses \
             it deletes and overwrites; fix what the message names and install again",
        )
    })?;
    parse(&out, location.to_string(), url)
}

/// The canary's requests on an SFTP target's REST server: write it,
/// write it again, delete it.
const REST_CANARY: [Request; 3] = [
    Request {
        method: "POST",
        path: "/kastell-canary",
        body: Some(CANARY_CONTENT),
    },
    Request {
        method: "POST",
        path: "/kastell-canary",
        body: Some(CANARY_CONTENT),
    },
    Request {
        method: "DELETE",
        path: "/kastell-canary",
        body: None,
    },
];

/// Runs the canary on the server `root` reaches through its own SSH login
/// to the storage of the SFTP `location` (`target`, with the storage's
/// pinned keys `known_hosts`): the server's `ssh` asks for a command only
/// a login without a forced command would run, and kastell sends the
/// canary's write, overwrite and delete through it to the REST server
/// the forced command starts. `authorized` is the storage-side line the
/// errors tell the operator to install. Refuses a login that ran the
/// asked command (not forced into the REST server); fails, proving
/// nothing, when the server's login was refused or the storage answered
/// something else.
pub(crate) async fn probe_rclone(
    root: Root<'_>,
    server: &str,
    (target, layout): (&SftpTarget, &Layout),
    known_hosts: &str,
    location: &RepoLocation,
    authorized: &str,
) -> Result<CanaryReport> {
    let script = format!(
        "set -u\numask 077\nkh=$(mktemp) || exit 92\ntrap 'rm -f \"$kh\"' EXIT\n\
         printf '%s\\n' {known_hosts} > \"$kh\" || exit 92\n{line}\n",
        known_hosts = kastell_core::quote(known_hosts),
        line = target.canary_line(layout)?,
    );
    let install = format!(
        "Add this line to the storage login's ~/.ssh/authorized_keys (README, \"On-server \
         backups\"), then install again:\n{authorized}"
    );
    let exchange = rest::exchange(root, &script, &REST_CANARY).await?;
    if exchange.status == NOT_FORCED_STATUS {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{server}: the storage ran the command this server's own key asked for: the key \
                 is not forced into `rclone serve restic --append-only`, so a compromised server \
                 could delete its backups; nothing was installed there"
            ),
        )
        .with_hint(format!("Replace the key's line. {install}")));
    }
    let [create, overwrite, delete] = exchange.statuses[..] else {
        let error = rest::unproven(
            &format!("{server}: the server's own login to the storage did not answer the canary"),
            &exchange,
        );
        return Err(if exchange.status == 255 {
            error.with_hint(install)
        } else {
            error.with_hint("Check that rclone is installed on the storage host and that the forced command names the server's directory")
        });
    };
    let attempt = |what: &str, code: u16| match code {
        200..=299 => Ok(Attempt::Allowed),
        403 => Ok(Attempt::Refused),
        _ => Err(rest::unproven(
            &format!("{server}: the storage answered the canary's {what} with HTTP {code}"),
            &exchange,
        )),
    };
    if !(200..=299).contains(&create) && create != 403 {
        return Err(rest::unproven(
            &format!(
                "{server}: the storage refused to let this server write the canary (HTTP {create})"
            ),
            &exchange,
        ));
    }
    Ok(CanaryReport {
        location: location.to_string(),
        canary: format!("{location}/{CANARY_NAME}"),
        overwrite: attempt("overwrite", overwrite)?,
        delete: attempt("delete", delete)?,
    })
}

/// Reads the script's two verdict lines; anything else is refused.
fn parse(out: &str, location: String, canary: String) -> Result<CanaryReport> {
    let mut overwrite = None;
    let mut delete = None;
    for line in out.lines() {
        let attempt = |value: &str| match value {
            "refused" => Some(Attempt::Refused),
            "allowed" => Some(Attempt::Allowed),
            "kept" => Some(Attempt::Kept),
            _ => None,
        };
        match line.trim().split_once('=') {
            Some(("overwrite", value)) => overwrite = attempt(value),
            Some(("delete", value)) if value != "kept" => delete = attempt(value),
            _ => {}
        }
    }
    let (Some(overwrite), Some(delete)) = (overwrite, delete) else {
        return Err(Error::unexpected(
            "the server's canary answered without both verdicts (overwrite and delete)",
        ));
    };
    Ok(CanaryReport {
        location,
        canary,
        overwrite,
        delete,
    })
}

/// The error that stops the install of `server` when `report` shows its
/// login is not append-only: what the storage allowed, and how to
/// restrict it (`restrict`, the storage-specific sentence).
pub(crate) fn refusal(server: &str, report: &CanaryReport, restrict: &str) -> Error {
    let allowed = match (report.delete, report.overwrite) {
        (Attempt::Allowed, Attempt::Allowed) => "delete and overwrite",
        (Attempt::Allowed, _) => "delete",
        _ => "overwrite",
    };
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "{server}: the storage let this server's own login {allowed} {} in its repository \
             {}: a compromised server could destroy its backups, so nothing was installed there",
            report.canary, report.location
        ),
    )
    .with_hint(restrict.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_sits_at_the_root_of_the_servers_repository() {
        let at = RepoLocation::parse("s3:http://127.0.0.1:9/kastell/fleet/servers/web-1").unwrap();
        assert_eq!(
            s3_url(&at).unwrap(),
            "http://127.0.0.1:9/kastell/fleet/servers/web-1/kastell-canary"
        );
        let local = RepoLocation::parse("/srv/repo").unwrap();
        assert!(s3_url(&local).is_none());
    }

    #[test]
    fn the_rest_canary_writes_overwrites_and_deletes_the_one_canary() {
        let methods: Vec<&str> = REST_CANARY.iter().map(|r| r.method).collect();
        assert_eq!(methods, ["POST", "POST", "DELETE"]);
        for request in &REST_CANARY {
            assert_eq!(request.path, format!("/{CANARY_NAME}"));
        }
    }

    #[test]
    fn the_script_is_valid_shell() {
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", S3_SCRIPT])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn only_both_verdicts_make_a_report() {
        let report = parse(
            "noise\noverwrite=kept\ndelete=refused\n",
            "l".into(),
            "c".into(),
        )
        .unwrap();
        assert!(report.is_append_only(), "{report:?}");
        let open = parse(
            "overwrite=allowed\ndelete=refused\n",
            "l".into(),
            "c".into(),
        )
        .unwrap();
        assert!(!open.is_append_only());
        for bad in [
            "",
            "overwrite=refused\n",
            "overwrite=refused\ndelete=kept\n",
            "overwrite=yes\ndelete=refused\n",
        ] {
            assert!(parse(bad, "l".into(), "c".into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_refusal_names_what_the_storage_allowed_and_how_to_restrict_it() {
        let report = CanaryReport {
            location: "s3:http://h/b/p".into(),
            canary: "http://h/b/p/kastell-canary".into(),
            overwrite: Attempt::Kept,
            delete: Attempt::Allowed,
        };
        let error = refusal("web-1", &report, "Deny s3:DeleteObject");
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
        assert!(error.to_string().contains("web-1"), "{error}");
        assert!(error.to_string().contains("login delete "), "{error}");
        assert!(
            error.to_string().contains("nothing was installed"),
            "{error}"
        );
        assert_eq!(error.hint(), Some("Deny s3:DeleteObject"));
    }
}
