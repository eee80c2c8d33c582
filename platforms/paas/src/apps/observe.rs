//! What an app's data looks like on a host now, for a rehearsal to compare
//! with the backup ([`kastell_core::Platform::observe_app`]): whether its
//! container runs, a PostgreSQL resource's rows per table, a volume's files
//! and their SHA-256, and Docker's health status of the containers that
//! declare a health check (`docker inspect`'s `.State.Health.Status`). It
//! only reads. The commands are fixed text with the
//! app's checked key or volume as quoted arguments; what the server answers
//! is parsed strictly (a line that is not what the command prints fails
//! the whole answer) and never reaches a command.

use std::collections::BTreeMap;

use kastell_core::types::{AppData, AppDataKind, AppHealth, AppObserved};
use kastell_core::{Error, ErrorKind, RemoteCommand, Result, TransportExt};

use super::commands;
use crate::platform::PaasPlatform;

/// The rows of every table of the database the container's own
/// environment names, one `schema.table|count` line each, counted in one
/// statement (no table name leaves the server).
const COUNT_ROWS: &str = "SELECT format('%I.%I', n.nspname, c.relname) || '|' || \
     (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', \
     n.nspname, c.relname), false, true, '')))[1]::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1";

/// The most tables or files an answer may list before it is refused.
const MOST_ENTRIES: usize = 1_000_000;

/// `COUNT_ROWS` inside the database container, with its own credentials.
fn count_rows(container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} sh -c {} sh {}",
        &[
            container,
            "u=${POSTGRES_USER:-postgres}; exec psql -X -At -v ON_ERROR_STOP=1 -U \"$u\" \
             -d \"${POSTGRES_DB:-$u}\" -c \"$1\"",
            COUNT_ROWS,
        ],
    )
}

/// The SHA-256 of every regular file under the volume's directory, as
/// `sha256sum` prints them (`<hex>  ./path`).
fn volume_sums(dir: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "sh -c {} sh {}",
        &["cd \"$1\" && find . -type f -exec sha256sum -- {} +", dir],
    )
}

/// The `docker inspect` template that prints a container's health status,
/// `none` when it declares no health check.
const HEALTH: &str = "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}";

/// The health status ([`HEALTH`]) of each running container that uses
/// volume `volume`, one line each; nothing when none runs.
fn volume_users(volume: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "sh -c {} sh {} {}",
        &[
            "ids=$(docker ps -q --no-trunc --filter \"volume=$1\") || exit 1; \
             [ -z \"$ids\" ] || exec docker inspect --type container --format \"$2\" $ids",
            volume,
            HEALTH,
        ],
    )
}

/// The health status ([`HEALTH`]) of the container `container`.
fn container_health(container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker inspect --type container --format {} {}",
        &[HEALTH, container],
    )
}

fn bad_answer(what: &str, line: &str) -> Error {
    let shown: String = line
        .chars()
        .take(120)
        .flat_map(char::escape_default)
        .collect();
    Error::new(
        ErrorKind::Corrupt,
        format!("the server's {what} has a line kastell did not ask for: \"{shown}\""),
    )
}

/// Parses `schema.table|count` lines. Refuses a line without a count, a
/// count that is not a plain number and more than [`MOST_ENTRIES`] lines.
pub(crate) fn parse_rows(text: &str) -> Result<BTreeMap<String, u64>> {
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (table, count) = line
            .rsplit_once('|')
            .filter(|(t, c)| {
                !t.is_empty() && !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| bad_answer("row count", line))?;
        let count = count
            .parse::<u64>()
            .map_err(|_| bad_answer("row count", line))?;
        if rows.insert(table.to_owned(), count).is_some() || rows.len() > MOST_ENTRIES {
            return Err(bad_answer("row count", line));
        }
    }
    Ok(rows)
}

/// Parses [`HEALTH`]'s lines, one per container: each exactly one of
/// Docker's words (`none`, `starting`, `healthy`, `unhealthy`), at most
/// [`MOST_ENTRIES`]. Returns how many containers answered and the worst
/// status of those that declare a check.
pub(crate) fn parse_health(text: &str) -> Result<(usize, Option<AppHealth>)> {
    let mut count = 0;
    let mut worst = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let health = AppHealth::parse(line).map_err(|_| bad_answer("health status", line))?;
        count += 1;
        if count > MOST_ENTRIES {
            return Err(bad_answer("health status", line));
        }
        worst = worst.max(health);
    }
    Ok((count, worst))
}

/// Undoes `sha256sum`'s escaping of a name (a line starting with `\`:
/// `\\` is a backslash, `\n` a newline, `\r` a carriage return).
fn unescape(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// Parses `sha256sum`'s lines for files found under `.`: `<64 hex>  ./path`
/// (a line starting with `\` has an escaped name). Refuses anything else.
pub(crate) fn parse_sums(text: &str) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (escaped, rest) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let parsed = rest.split_at_checked(64).and_then(|(hex, name)| {
            let hex_ok = hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let name = name
                .strip_prefix("  ./")
                .or_else(|| name.strip_prefix(" *./"))?;
            let name = if escaped {
                unescape(name)?
            } else {
                name.to_owned()
            };
            (hex_ok && !name.is_empty()).then(|| (name, hex.to_owned()))
        });
        let (name, hex) = parsed.ok_or_else(|| bad_answer("file checksums", line))?;
        if files.insert(name, hex).is_some() || files.len() > MOST_ENTRIES {
            return Err(bad_answer("file checksums", line));
        }
    }
    Ok(files)
}

impl PaasPlatform {
    /// See [`kastell_core::Platform::observe_app`]: `part` is checked first.
    pub(crate) async fn observe(&self, part: &AppData) -> Result<AppObserved> {
        part.check()?;
        let timeout = self.settings.restore_timeout;
        if let (AppDataKind::Volume, Some(volume)) = (part.kind, part.volume.as_deref()) {
            let users = self
                .transport
                .exec_checked(&volume_users(volume)?, self.settings.short_timeout)
                .await?;
            let (running, health) = parse_health(&users.stdout_text())?;
            let dir = commands::volume_dir(&self.settings, volume);
            let sums = self
                .transport
                .exec_checked(&volume_sums(&dir)?, timeout)
                .await?;
            return Ok(AppObserved {
                running: running > 0,
                rows: None,
                files: Some(parse_sums(&sums.stdout_text())?),
                health,
            });
        }
        let Some(container) = self.app_container(&part.app).await? else {
            return Ok(AppObserved::default());
        };
        let answer = self
            .transport
            .exec_checked(&container_health(&container)?, self.settings.short_timeout)
            .await?;
        let health = match parse_health(&answer.stdout_text())? {
            (1, health) => health,
            _ => return Err(bad_answer("health status", &answer.stdout_text())),
        };
        let rows = if part.kind == AppDataKind::Postgres {
            let out = self
                .transport
                .exec_checked(&count_rows(&container)?, timeout)
                .await?;
            Some(parse_rows(&out.stdout_text())?)
        } else {
            None
        };
        Ok(AppObserved {
            running: true,
            rows,
            files: None,
            health,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_are_parsed_strictly() {
        let rows = parse_rows("public.posts|3\npublic.\"a|b\"|250\n").unwrap();
        assert_eq!(rows["public.posts"], 3);
        assert_eq!(rows["public.\"a|b\""], 250);
        for bad in [
            "public.posts",
            "public.posts|",
            "|3",
            "t|-1",
            "t|1e3",
            "t| 3",
            "t|3\nt|4",
        ] {
            assert!(parse_rows(bad).is_err(), "{bad:?}");
        }
        assert!(parse_rows("").unwrap().is_empty());
    }

    #[test]
    fn checksums_are_parsed_strictly_with_escaped_names() {
        let a = "a".repeat(64);
        let text = format!("{a}  ./index.html\n\\{a}  ./odd\\nname\\\\x\n");
        let files = parse_sums(&text).unwrap();
        assert_eq!(files["index.html"], a);
        assert_eq!(files["odd\nname\\x"], a);
        for bad in [
            format!("{}  ./x", "A".repeat(64)),
            format!("{a} ./x"),
            format!("{a}  x"),
            format!("{a}  ./"),
            format!("\\{a}  ./bad\\q"),
            "deadbeef  ./x".to_owned(),
            format!("{a}  ./x\n{a}  ./x"),
        ] {
            assert!(parse_sums(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn health_lines_are_parsed_strictly_and_the_worst_wins() {
        assert_eq!(parse_health("").unwrap(), (0, None));
        assert_eq!(parse_health("none\n").unwrap(), (1, None));
        assert_eq!(
            parse_health("healthy\nnone\nstarting\n").unwrap(),
            (3, Some(AppHealth::Starting))
        );
        assert_eq!(
            parse_health("unhealthy\nhealthy").unwrap(),
            (2, Some(AppHealth::Unhealthy))
        );
        for bad in [
            "Healthy",
            "healthy ",
            "ok",
            "healthy\nrunning",
            "<no value>",
        ] {
            assert!(parse_health(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn commands_quote_what_they_are_given() {
        let c = volume_sums("/var/lib/docker/volumes/x;rm -rf/_data").unwrap();
        assert!(
            c.to_string()
                .contains("'/var/lib/docker/volumes/x;rm -rf/_data'"),
            "{c}"
        );
    }
}
