//! `kastell auth set|list|remove`: provider API tokens kept in the kastell
//! directory ([`crate::state::tokens`]) so the CLI and `kastell-mcp` find
//! them when the provider's variable is unset. A token is read from a
//! prompt that does not echo (in a terminal) or from stdin (piped), never
//! from the command line, and never printed: listings show where it is
//! and its last four characters.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use clap::{Args, Subcommand};
use kastell_core::registry::FIRST_PARTY_PROVIDERS;
use kastell_core::{Error, Registry, Result, Secret};
use serde::Serialize;

use super::Context;
use crate::policy::TokenEnv;
use crate::state::store::is_known_provider;
use crate::state::tokens::{Place, TokenListing, TokenStore, account_name};

/// The `auth` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AuthCommand {
    /// Store PROVIDER's API token: typed at a prompt that does not echo,
    /// or piped in on stdin (`kastell auth set hetzner < token.txt`); in
    /// the session's keychain when there is one, else in a private file.
    Set(SetArgs),
    /// List the tokens kastell can use: provider, account, where each is
    /// (a variable or the stored file) and its last four characters.
    List,
    /// Forget PROVIDER's stored token (a variable that is set stays in
    /// force).
    Remove(AuthTarget),
}

/// Which token: a provider and, optionally, an account.
#[derive(Debug, Clone, Args)]
pub struct AuthTarget {
    /// The provider (hetzner, digitalocean, vultr, linode, or one a linked
    /// crate registers).
    pub provider: String,
    /// The account, for more than one per provider (`server add --account`
    /// names it); default: the default account.
    #[arg(long)]
    pub account: Option<String>,
}

/// `auth set`'s arguments: which token, and where to keep it.
#[derive(Debug, Clone, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub target: AuthTarget,
    /// Where to keep it: the keychain (default in a desktop session with
    /// a Secret Service; cron jobs and services cannot open it) or the
    /// private file in the kastell directory (default elsewhere).
    #[arg(long, value_enum)]
    pub store: Option<Place>,
}

/// Runs an `auth` command.
pub(crate) fn run(cmd: AuthCommand, ctx: &Context) -> Result<()> {
    let store = TokenStore::for_env(&ctx.kastell_dir()?, &ctx.env);
    match cmd {
        AuthCommand::Set(args) => set(&store, &args, ctx),
        AuthCommand::List => list(&store, ctx),
        AuthCommand::Remove(target) => remove(&store, &target, ctx),
    }
}

/// Refuses a provider this build does not know, listing the known ones.
fn check_provider(provider: &str) -> Result<()> {
    if is_known_provider(provider) {
        return Ok(());
    }
    let mut ids: Vec<&str> = FIRST_PARTY_PROVIDERS
        .iter()
        .copied()
        .chain(Registry::global().provider_ids())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Err(Error::invalid_input(format!(
        "Unknown provider {}",
        crate::state::store::shown(provider)
    ))
    .with_hint(format!("Known providers: {}", ids.join(", "))))
}

fn set(store: &TokenStore, args: &SetArgs, ctx: &Context) -> Result<()> {
    let target = &args.target;
    check_provider(&target.provider)?;
    let account = account_name(target.account.as_deref())?;
    let place = args.store.unwrap_or_else(|| store.default_place());
    if place == Place::Keychain {
        // Said before the token is typed, not after.
        store.require_keychain()?;
    }
    let token = read_token(&target.provider, &account)?;
    store.set_in(place, &target.provider, Some(&account), &token)?;
    let var = TokenEnv::for_account(&target.provider, Some(&account)).var;
    let stored_in = match place {
        Place::Keychain => "keychain".to_owned(),
        Place::File => store.path().display().to_string(),
    };
    if ctx.out.is_json() {
        return ctx.out.json(&serde_json::json!({
            "stored": true,
            "provider": target.provider,
            "account": account,
            "storedIn": stored_in,
        }));
    }
    match place {
        Place::Keychain => ctx.out.line(format_args!(
            "Stored the {} token of account {account} in the session's keychain \
             (cron jobs and services outside this login cannot open it: \
             for them, kastell auth set {} --store file)",
            target.provider, target.provider
        ))?,
        Place::File => ctx.out.line(format_args!(
            "Stored the {} token of account {account} in {stored_in} (mode 0600)",
            target.provider
        ))?,
    }
    if ctx.env.get_nonempty(&var).is_some() {
        ctx.out.line(format_args!(
            "{var} is set and is used before the stored token."
        ))?;
    }
    Ok(())
}

fn remove(store: &TokenStore, target: &AuthTarget, ctx: &Context) -> Result<()> {
    check_provider(&target.provider)?;
    let account = account_name(target.account.as_deref())?;
    if !store.remove(&target.provider, Some(&account))? {
        return Err(Error::not_found(format!(
            "No stored {} token for account {account}",
            target.provider
        ))
        .with_hint("`kastell auth list` shows the tokens there are"));
    }
    if ctx.out.is_json() {
        return ctx.out.json(&serde_json::json!({
            "removed": true,
            "provider": target.provider,
            "account": account,
        }));
    }
    ctx.out.line(format_args!(
        "Removed the stored {} token of account {account}",
        target.provider
    ))
}

/// A token kastell can use, as `auth list` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    provider: String,
    account: String,
    /// `env:<VAR>` or the stored file's path.
    source: String,
    /// Whether an environment variable overrides this stored token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    overridden: bool,
    ends_with: String,
}

fn list(store: &TokenStore, ctx: &Context) -> Result<()> {
    let mut rows: Vec<Listed> = Vec::new();
    for id in Registry::global().provider_ids() {
        let var = TokenEnv::for_provider(id).var;
        if let Some(value) = ctx.env.get_nonempty(&var) {
            rows.push(Listed {
                provider: id.to_owned(),
                account: crate::state::tokens::DEFAULT_ACCOUNT.to_owned(),
                source: format!("env:{var}"),
                overridden: false,
                ends_with: crate::state::tokens::last_four(&value),
            });
        }
    }
    for TokenListing {
        provider,
        account,
        stored_in,
        ends_with,
    } in store.list()?
    {
        let var = TokenEnv::for_account(&provider, Some(&account)).var;
        rows.push(Listed {
            overridden: ctx.env.get_nonempty(&var).is_some(),
            provider,
            account,
            source: stored_in,
            ends_with,
        });
    }
    if ctx.out.is_json() {
        return ctx.out.json(&rows);
    }
    if rows.is_empty() {
        return ctx.out.line(
            "No tokens: store one with `kastell auth set PROVIDER`, or set the provider's variable.",
        );
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.provider.clone(),
                r.account.clone(),
                if r.overridden {
                    format!("{} (overridden by the variable)", r.source)
                } else {
                    r.source.clone()
                },
                format!("...{}", r.ends_with),
            ]
        })
        .collect();
    ctx.out
        .table(&["PROVIDER", "ACCOUNT", "WHERE", "ENDS WITH"], &table)
}

/// The token: typed at a prompt on stderr with echo off when stdin is a
/// terminal, else all of stdin. Refuses an empty one.
fn read_token(provider: &str, account: &str) -> Result<Secret> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        crate::surfaces::cli::output::write_stderr(&format!(
            "{provider} API token for account {account} (not shown): "
        ));
        let _ = std::io::stderr().flush();
        let echo_off = stty("-echo");
        let mut line = String::new();
        let read = stdin.read_line(&mut line);
        if echo_off {
            stty("echo");
        }
        crate::surfaces::cli::output::write_stderr("\n");
        read.map_err(|e| Error::io("reading the token", e))?;
        line
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| Error::io("reading the token from stdin", e))?;
        text
    };
    let token = Secret::new(text);
    if token.is_empty() || token.expose().chars().any(char::is_whitespace) {
        return Err(Error::invalid_input("No token was given, or it holds spaces or line breaks")
            .with_hint(format!(
                "Paste the token at the prompt, or pipe it in: kastell auth set {provider} < token.txt"
            )));
    }
    Ok(token)
}

/// Runs `stty ARG` on the terminal that is stdin; whether it worked.
fn stty(arg: &str) -> bool {
    Command::new("stty")
        .arg(arg)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
