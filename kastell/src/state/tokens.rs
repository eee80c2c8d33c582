//! Stored provider API tokens (`tokens.json`): what `kastell auth set`
//! keeps, per provider and account, for [`crate::ops::Context::token`] and
//! the policy to find when the provider's environment variable is unset.
//!
//! Two places: the session's keychain ([`super::keychain`], where there is
//! a desktop session with a Secret Service) and a private file. The file
//! is private like an SSH key (mode 0600 in the 0700 kastell directory,
//! replaced atomically under a lock), not encrypted: a key to decrypt it
//! would have to sit beside it for cron jobs and `kastell-mcp` to start
//! unattended, which adds nothing against someone who can read the
//! directory. A lookup asks the keychain first, then the file, as the
//! original tool did. A token never leaves this module except as a
//! [`Secret`], and listings show only its last four characters.

use std::path::{Path, PathBuf};

use kastell_core::{Error, Result, Secret};
use serde::{Deserialize, Serialize};

use super::keychain::Keychain;
use super::store::write_atomic;
use super::store::{LockOptions, StoreLock};
use crate::env::Env;
use crate::policy::TokenEnv;

/// The file the tokens are stored in, inside the kastell directory.
pub const TOKENS_FILE: &str = "tokens.json";

/// The account a token belongs to when none is named.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One stored token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    provider: String,
    account: String,
    token: String,
}

/// The file's shape.
#[derive(Default, Serialize, Deserialize)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<Stored>,
}

/// A stored token as `auth list` shows it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenListing {
    /// The provider id.
    pub provider: String,
    /// The account name ([`DEFAULT_ACCOUNT`] when none was given).
    pub account: String,
    /// Where it is kept (the file's path).
    pub stored_in: String,
    /// Its last four characters, to tell tokens apart.
    pub ends_with: String,
}

/// Where `kastell auth set` keeps a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Place {
    /// The session's keychain (Secret Service), which cron jobs and
    /// services outside the login session cannot open.
    Keychain,
    /// The private file `tokens.json` in the kastell directory.
    File,
}

/// The tokens stored for one kastell directory: its file and, where
/// there is one, the session's keychain.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
    keychain: Option<Keychain>,
}

/// `account`, or the default one; refuses a name that is not 1-63 lower-case
/// letters, digits and '-'.
pub fn account_name(account: Option<&str>) -> Result<String> {
    let name = account.unwrap_or(DEFAULT_ACCOUNT);
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Error::invalid_input(format!(
            "Invalid account name {}",
            super::store::shown(name)
        ))
        .with_hint("Use 1-63 lower-case letters, digits and '-', such as work or client-a"))
    }
}

impl TokenStore {
    /// The tokens kept in `dir` (the kastell directory), in its file only.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(TOKENS_FILE),
            keychain: None,
        }
    }

    /// The tokens kept in `dir`'s file and in the keychain of the session
    /// `env` belongs to, when it has one ([`Keychain::from_env`]).
    pub fn for_env(dir: &Path, env: &Env) -> Self {
        Self {
            keychain: Keychain::from_env(env),
            ..Self::in_dir(dir)
        }
    }

    /// The keychain, when the session has one.
    pub fn keychain(&self) -> Option<&Keychain> {
        self.keychain.as_ref()
    }

    /// The keychain; refuses when the session has none, saying what one
    /// needs.
    pub fn require_keychain(&self) -> Result<&Keychain> {
        self.keychain.as_ref().ok_or_else(|| {
            Error::new(
                kastell_core::ErrorKind::Unavailable,
                "There is no keychain in this session",
            )
            .with_hint(
                "A keychain needs a desktop login session (DBUS_SESSION_BUS_ADDRESS) and \
                 secret-tool (apt install libsecret-tools); use --store file",
            )
        })
    }

    /// Where [`TokenStore::set_in`] puts a token unless told: the keychain
    /// when there is one, else the file.
    pub fn default_place(&self) -> Place {
        if self.keychain.is_some() {
            Place::Keychain
        } else {
            Place::File
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<TokensFile> {
        match std::fs::read(&self.path) {
            // serde's message can quote a value (a token), so only where
            // the file went wrong is said.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::config_invalid(format!(
                    "{} is not valid ({:?} error at line {}, column {})",
                    self.path.display(),
                    e.classify(),
                    e.line(),
                    e.column()
                ))
                .with_hint("Remove the file and store the tokens again with `kastell auth set`")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokensFile::default()),
            Err(e) => Err(Error::io(format!("reading {}", self.path.display()), e)),
        }
    }

    /// Runs `change` on the file's contents under its lock
    /// (`tokens.json.lock`, as `servers.json` has), so two `auth set` at
    /// once both land, and saves what it leaves.
    fn modify<T>(&self, change: impl FnOnce(&mut TokensFile) -> T) -> Result<T> {
        let lock_dir = self.path.with_extension("json.lock");
        let lock = StoreLock::acquire(&lock_dir, &LockOptions::default())?;
        let mut file = self.load()?;
        let out = change(&mut file);
        self.save(&file)?;
        lock.release()?;
        Ok(out)
    }

    fn save(&self, file: &TokensFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| Error::unexpected(format!("encoding the stored tokens: {e}")))?;
        write_atomic(&self.path, &bytes)
    }

    /// The token stored for `provider` and `account` (the default account
    /// when `None`): the keychain's, else the file's; `None` when there is
    /// none. A keychain that fails is passed over with a warning (the file
    /// may still have the token); refuses an unreadable or invalid file.
    pub fn get(&self, provider: &str, account: Option<&str>) -> Result<Option<Secret>> {
        if let Some(keychain) = &self.keychain {
            match keychain.get(&TokenEnv::for_account(provider, account).var) {
                Ok(Some(token)) => return Ok(Some(token)),
                Ok(None) => {}
                Err(e) => tracing::warn!("the keychain was passed over: {e}"),
            }
        }
        let account = account.unwrap_or(DEFAULT_ACCOUNT);
        Ok(self
            .load()?
            .tokens
            .into_iter()
            .find(|t| t.provider == provider && t.account == account)
            .map(|t| Secret::new(t.token)))
    }

    /// Stores `token` for `provider` and `account` in the file, replacing
    /// one stored before. Refuses an empty token and an invalid account
    /// name.
    pub fn set(&self, provider: &str, account: Option<&str>, token: &Secret) -> Result<()> {
        self.set_in(Place::File, provider, account, token)
    }

    /// Stores `token` for `provider` and `account` at `place`, replacing
    /// one stored there before. Refuses an empty token, an invalid account
    /// name, the keychain when the session has none, and a keychain that
    /// fails (nothing is then stored anywhere).
    pub fn set_in(
        &self,
        place: Place,
        provider: &str,
        account: Option<&str>,
        token: &Secret,
    ) -> Result<()> {
        let account = account_name(account)?;
        if token.is_empty() {
            return Err(Error::invalid_input("The token is empty")
                .with_hint("Paste the provider's API token at the prompt, or pipe it in"));
        }
        if place == Place::Keychain {
            let keychain = self.require_keychain()?;
            let var = TokenEnv::for_account(provider, Some(&account)).var;
            return keychain.set(&var, provider, &account, token);
        }
        self.modify(|file| {
            file.tokens
                .retain(|t| !(t.provider == provider && t.account == account));
            file.tokens.push(Stored {
                provider: provider.to_owned(),
                account,
                token: token.expose().to_owned(),
            });
            file.tokens
                .sort_by(|a, b| (&a.provider, &a.account).cmp(&(&b.provider, &b.account)));
        })
    }

    /// Removes the token of `provider` and `account` from the keychain
    /// and the file; whether there was one. Refuses when the keychain
    /// fails (the file's is then left too, so nothing is half-removed).
    pub fn remove(&self, provider: &str, account: Option<&str>) -> Result<bool> {
        let account = account_name(account)?;
        let in_keychain = match &self.keychain {
            Some(keychain) => {
                keychain.remove(&TokenEnv::for_account(provider, Some(&account)).var)?
            }
            None => false,
        };
        if !self.path.exists() {
            return Ok(in_keychain);
        }
        let in_file = self.modify(|file| {
            let before = file.tokens.len();
            file.tokens
                .retain(|t| !(t.provider == provider && t.account == account));
            file.tokens.len() != before
        })?;
        Ok(in_keychain || in_file)
    }

    /// Every stored token, by provider and account, without the tokens:
    /// the keychain's (`stored_in` is `keychain`), then the file's.
    pub fn list(&self) -> Result<Vec<TokenListing>> {
        let mut listed: Vec<TokenListing> = match &self.keychain {
            Some(keychain) => keychain
                .list()?
                .into_iter()
                .map(|e| TokenListing {
                    provider: e.provider,
                    account: e.account,
                    stored_in: "keychain".to_owned(),
                    ends_with: e.ends_with,
                })
                .collect(),
            None => Vec::new(),
        };
        listed.extend(self.load()?.tokens.into_iter().map(|t| TokenListing {
            ends_with: last_four(&t.token),
            provider: t.provider,
            account: t.account,
            stored_in: self.path.display().to_string(),
        }));
        Ok(listed)
    }
}

/// The last four characters of `token` (all of it hidden when it is
/// shorter than 12, where four would be a third of it).
pub fn last_four(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() < 12 {
        return "****".to_owned();
    }
    chars[chars.len() - 4..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_are_kept_per_provider_and_account_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(dir.path());
        assert!(store.get("hetzner", None).unwrap().is_none());
        store
            .set("hetzner", None, &Secret::new("hetzner-token-aaaa-1234"))
            .unwrap();
        store
            .set(
                "hetzner",
                Some("work"),
                &Secret::new("hetzner-token-bbbb-5678"),
            )
            .unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            store.get("hetzner", None).unwrap().unwrap().expose(),
            "hetzner-token-aaaa-1234"
        );
        assert_eq!(
            store
                .get("hetzner", Some("work"))
                .unwrap()
                .unwrap()
                .expose(),
            "hetzner-token-bbbb-5678"
        );
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].account, "default");
        assert_eq!(listed[0].ends_with, "1234");
        assert!(!format!("{listed:?}").contains("aaaa"));
        assert!(store.remove("hetzner", None).unwrap());
        assert!(!store.remove("hetzner", None).unwrap());
        assert!(store.get("hetzner", None).unwrap().is_none());
        assert!(
            store
                .set("hetzner", Some("Bad Name"), &Secret::new("x"))
                .is_err()
        );
        assert!(store.set("hetzner", None, &Secret::new("  ")).is_err());
    }

    #[test]
    fn a_broken_file_is_refused_without_quoting_what_is_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(dir.path());
        std::fs::write(store.path(), r#"{"tokens": "hcloud-secret-value-9876"}"#).unwrap();
        let err = store.get("hetzner", None).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("hcloud-secret"), "{err}");
    }

    #[test]
    fn tokens_stored_at_once_from_many_threads_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(dir.path());
        std::thread::scope(|scope| {
            for i in 0..8 {
                let store = store.clone();
                scope.spawn(move || {
                    let account = format!("account-{i}");
                    let token = Secret::new(format!("token-for-account-{i}"));
                    store.set("hetzner", Some(&account), &token).unwrap();
                });
            }
        });
        assert_eq!(store.list().unwrap().len(), 8);
        assert!(!dir.path().join("tokens.json.lock").exists());
    }
}
