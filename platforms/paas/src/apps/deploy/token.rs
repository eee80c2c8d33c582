//! The short-lived API credential a recovery writes into the restored
//! platform database to ask the platform to deploy its apps, and deletes
//! after. kastell holds no platform token; the platform's own table is the
//! one place a credential can come from on a fresh host.
//!
//! - **Coolify**: a Laravel Sanctum personal access token, a row of
//!   `personal_access_tokens` for the root user (`App\Models\User`, id 0)
//!   and root team (`team_id` 0) with the `root` ability, its `token`
//!   column the SHA-256 (hex) of the secret part; the bearer is
//!   `<row id>|<secret>` (Sanctum's `findToken` splits at `|`, looks the
//!   row up by id and compares the hash). Expires after
//!   [`LIFETIME_MINUTES`].
//! - **Dokploy**: a better-auth API key, a row of `apikey` for the
//!   organization's owner (its `member` row of role `owner`), its `key`
//!   column the SHA-256 of the key, base64url without padding (better-auth's
//!   default hasher), `metadata` naming the organization (Dokploy reads
//!   `organizationId` from it), enabled, expiring after
//!   [`LIFETIME_MINUTES`]. The owner column is `reference_id` in
//!   better-auth 1.4's schema and `user_id` before it: the SQL uses the
//!   one the table has.
//!
//! The secret part only ever travels on a command's stdin (as a `curl -H @-`
//! header): the SQL that writes the row carries its hash, never the
//! secret, and nothing here formats the secret ([`ApiToken`]'s `Debug`
//! hides it).

use std::io::Read;

use base64::Engine;
use kastell_core::{Error, ErrorKind, Result, Secret, TransportExt};
use sha2::{Digest, Sha256};

use crate::apps::commands;
use crate::platform::PaasPlatform;
use crate::spec::DeployApi;

/// How long a minted credential is valid at most, should its deletion
/// fail (the platform refuses it after).
pub(crate) const LIFETIME_MINUTES: u32 = 30;

/// The name the credential's row carries, so a person who finds one left
/// behind knows whose it is.
pub(crate) const TOKEN_NAME: &str = "kastell-recovery";

/// The characters of a secret: letters and digits (Sanctum's
/// `Str::random` alphabet, and what a header carries without escaping).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A credential minted in the platform database: the row that holds it
/// and the header that presents it.
pub(crate) struct ApiToken {
    /// The row's id (Coolify: a number; Dokploy: kastell's own id).
    pub(crate) row: String,
    /// The header line the platform's API checks, newline-terminated
    /// (`Authorization: Bearer <id>|<secret>` or `x-api-key: <secret>`).
    header: Secret,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// The header line for `curl -H @-`, on stdin only.
    pub(crate) fn header_line(&self) -> Vec<u8> {
        format!("{}\n", self.header.expose()).into_bytes()
    }
}

/// `len` random letters and digits from the operating system's generator
/// (rejection sampling, so every character is equally likely).
fn random_secret(len: usize) -> Result<String> {
    let mut source = std::fs::File::open("/dev/urandom")
        .map_err(|e| Error::io("opening the system's random generator", e))?;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        source
            .read_exact(&mut buf)
            .map_err(|e| Error::io("reading the system's random generator", e))?;
        for b in buf {
            // 248 = 4 * 62: the bytes above would favour some characters.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Sanctum's stored form: the SHA-256 of the secret, lowercase hex.
pub(crate) fn sanctum_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// better-auth's stored form: the SHA-256 of the key, base64url without
/// padding.
pub(crate) fn better_auth_hash(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(key.as_bytes()))
}

/// The SQL that writes a Coolify token row with `hash` and prints its id.
fn coolify_mint_sql(hash: &str) -> String {
    format!(
        "INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token, \
         abilities, expires_at, created_at, updated_at, team_id) VALUES ('App\\Models\\User', 0, \
         '{TOKEN_NAME}', '{hash}', '[\"root\"]', now() + interval '{LIFETIME_MINUTES} minutes', \
         now(), now(), '0') RETURNING id"
    )
}

/// The SQL that writes a Dokploy API key row `id` with `hash` (its first
/// characters `start`, as Dokploy shows them) for the organization's
/// owner, then prints the id.
fn dokploy_mint_sql(id: &str, start: &str, hash: &str) -> String {
    format!(
        "DO $kastell$ DECLARE owner_col text; org text; uid text; BEGIN \
         SELECT CASE WHEN EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = \
         'public' AND table_name = 'apikey' AND column_name = 'reference_id') THEN 'reference_id' \
         ELSE 'user_id' END INTO owner_col; \
         SELECT m.organization_id, m.user_id INTO org, uid FROM member m WHERE m.role = 'owner' \
         ORDER BY m.created_at LIMIT 1; \
         IF uid IS NULL THEN RAISE EXCEPTION 'the Dokploy database has no organization owner'; END IF; \
         EXECUTE format('INSERT INTO apikey (id, name, start, key, %I, enabled, \
         rate_limit_enabled, request_count, expires_at, created_at, updated_at, metadata) VALUES \
         ($1, $2, $3, $4, $5, true, false, 0, now() + interval ''{LIFETIME_MINUTES} minutes'', \
         now(), now(), $6)', owner_col) USING '{id}', '{TOKEN_NAME}', '{start}', '{hash}', uid, \
         json_build_object('organizationId', org)::text; END $kastell$; \
         SELECT id FROM apikey WHERE id = '{id}'"
    )
}

/// The SQL that deletes the row `token` names and prints its id (nothing
/// when it was already gone).
fn revoke_sql(api: DeployApi, token: &ApiToken) -> Option<String> {
    match api {
        DeployApi::Coolify => Some(format!(
            "DELETE FROM personal_access_tokens WHERE id = {} RETURNING id",
            token.row
        )),
        DeployApi::Dokploy => Some(format!(
            "DELETE FROM apikey WHERE id = '{}' RETURNING id",
            token.row
        )),
        DeployApi::None => None,
    }
}

/// Whether `row` is what a mint printed: Coolify's a number, Dokploy's
/// kastell's own id.
fn check_row(api: DeployApi, row: &str, expected: Option<&str>) -> Result<()> {
    let ok = match (api, expected) {
        (_, Some(id)) => row == id,
        (DeployApi::Coolify, None) => {
            !row.is_empty() && row.len() <= 19 && row.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Corrupt,
            "the platform database did not answer the new API credential's row id",
        ))
    }
}

impl PaasPlatform {
    /// Writes a short-lived API credential into the platform database in
    /// `container` (see the module docs) and returns it with a detail.
    /// Refuses a platform without a [`DeployApi`].
    pub(crate) async fn mint_token(&self, container: &str) -> Result<(ApiToken, String)> {
        let api = self.spec.apps.deploy;
        let secret = random_secret(40)?;
        let (sql, expected, header) = match api {
            DeployApi::Coolify => (coolify_mint_sql(&sanctum_hash(&secret)), None, None),
            DeployApi::Dokploy => {
                let id = format!("kastell-{}", random_secret(24)?);
                let sql = dokploy_mint_sql(&id, &secret[..6], &better_auth_hash(&secret));
                let header = format!("x-api-key: {secret}");
                (sql, Some(id), Some(header))
            }
            DeployApi::None => {
                return Err(Error::unsupported(format!(
                    "kastell knows no API to deploy {}'s apps with",
                    self.spec.display_name
                )));
            }
        };
        let out = self
            .transport
            .exec_checked(
                &commands::run_sql(self.spec, container, &sql)?,
                self.settings.short_timeout,
            )
            .await
            .map_err(|e| {
                e.or_hint(format!(
                    "kastell writes a short-lived API credential into {}'s restored database \
                     to deploy the apps; check that the database is of a version kastell knows",
                    self.spec.display_name
                ))
            })?;
        let text = out.stdout_text();
        let row = text.lines().last().unwrap_or_default().trim().to_owned();
        check_row(api, &row, expected.as_deref())?;
        let header = header.unwrap_or_else(|| format!("Authorization: Bearer {row}|{secret}"));
        let detail = format!(
            "API credential {TOKEN_NAME} (row {row}) written into the {} database, valid for \
             {LIFETIME_MINUTES} minutes at most",
            self.spec.display_name
        );
        Ok((
            ApiToken {
                row,
                header: Secret::new(header),
            },
            detail,
        ))
    }

    /// Deletes the credential's row; returns a detail. Fails (naming the
    /// row, for a person to delete) when the database cannot be asked.
    pub(crate) async fn revoke_token(
        &self,
        container: &str,
        token: &ApiToken,
    ) -> Result<((), String)> {
        let Some(sql) = revoke_sql(self.spec.apps.deploy, token) else {
            return Ok(((), "no credential was written".to_owned()));
        };
        let table = match self.spec.apps.deploy {
            DeployApi::Dokploy => "apikey",
            _ => "personal_access_tokens",
        };
        let out = self
            .transport
            .exec_checked(
                &commands::run_sql(self.spec, container, &sql)?,
                self.settings.short_timeout,
            )
            .await
            .map_err(|e| {
                e.or_hint(format!(
                    "Delete the row {} of {table} in the {} database by hand (it expires by \
                     itself within {LIFETIME_MINUTES} minutes)",
                    token.row, self.spec.display_name
                ))
            })?;
        let detail = if out.stdout_text().trim() == token.row {
            format!("API credential row {} deleted from {table}", token.row)
        } else {
            format!(
                "API credential row {} was already gone from {table}",
                token.row
            )
        };
        Ok(((), detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_platforms_stored_forms() {
        assert_eq!(
            sanctum_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            better_auth_hash("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn secrets_are_plain_and_differ() {
        let a = random_secret(40).unwrap();
        let b = random_secret(40).unwrap();
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn a_token_shows_its_row_never_its_secret() {
        let token = ApiToken {
            row: "7".into(),
            header: Secret::new("Authorization: Bearer 7|s3cr3tvalue"),
        };
        let shown = format!("{token:?}");
        assert!(
            shown.contains("\"7\"") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert_eq!(
            token.header_line(),
            b"Authorization: Bearer 7|s3cr3tvalue\n"
        );
    }

    #[test]
    fn only_the_expected_row_is_accepted() {
        assert!(check_row(DeployApi::Coolify, "42", None).is_ok());
        for hostile in ["", "4 2", "1; DROP TABLE x", "12345678901234567890"] {
            assert!(
                check_row(DeployApi::Coolify, hostile, None).is_err(),
                "{hostile}"
            );
        }
        assert!(check_row(DeployApi::Dokploy, "kastell-x", Some("kastell-x")).is_ok());
        assert!(check_row(DeployApi::Dokploy, "other", Some("kastell-x")).is_err());
    }
}
