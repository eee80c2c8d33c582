//! `kastell server add`.

use crate::ops::SERVER_ADD;
use clap::Args;
use kastell_core::Registry;
use kastell_core::registry::{FIRST_PARTY_PLATFORMS, FIRST_PARTY_PROVIDERS};
use kastell_core::types::ServerId;
use kastell_core::{Error, Result};

use crate::env::Env;
use crate::policy::Surface;
use crate::state::store::{
    ServerRecord, SshSettings, allow_private_ips, is_known_platform, is_known_provider,
    validate_ip, validate_name,
};
use crate::surfaces::cli::Context;

use super::detect::{self, Note};

const ID_HINT: &str = "Use the provider's server id (letters, digits, '-', '_' and '.'), or leave --id out for a manual server";

/// The ids a catalogue knows: the first-party ones (compiled in or not)
/// and every one registered in this build, sorted, once each.
fn known(first_party: &[&'static str], registered: Vec<&'static str>) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = first_party.iter().copied().chain(registered).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `Unknown <what> <value>`, with the ids this build knows as the hint.
fn unknown(what: &str, value: &str, ids: &[&str]) -> Error {
    Error::invalid_input(format!(
        "Unknown {what} {}",
        crate::state::store::shown(value)
    ))
    .with_hint(format!("Known {what}s: {}", ids.join(", ")))
}

/// `--platform`: a platform id kastell knows, first-party or registered by
/// a platform crate linked into this build (`bare` for none).
pub(crate) fn parse_platform(value: &str) -> std::result::Result<String, String> {
    if is_known_platform(value) {
        return Ok(value.to_owned());
    }
    let ids = known(FIRST_PARTY_PLATFORMS, Registry::global().platform_ids());
    Err(format!(
        "unknown platform {}; this build knows: {}",
        crate::state::store::shown(value),
        ids.join(", ")
    ))
}

/// Arguments of `kastell server add`.
#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// Unique name: 3-63 characters, lower-case letters, digits and '-'.
    #[arg(long)]
    pub name: String,
    /// Public IPv4 address.
    #[arg(long)]
    pub ip: String,
    /// Cloud provider (hetzner, digitalocean, vultr, linode). With its
    /// token set, the server's id is looked up by its IP; without
    /// --provider, every provider whose token is set is searched.
    #[arg(long)]
    pub provider: Option<String>,
    /// Platform the server runs: coolify, dokploy, bare (none), or any
    /// platform a linked crate registers (`kastell doctor` lists them).
    /// Default: detected over SSH.
    #[arg(long, value_parser = parse_platform)]
    pub platform: Option<String>,
    /// Domain for HTTPS health checks.
    #[arg(long)]
    pub domain: Option<String>,
    /// SSH user (default root).
    #[arg(long)]
    pub user: Option<String>,
    /// SSH port (default 22).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// SSH private key file.
    #[arg(long)]
    pub identity_file: Option<String>,
    /// A path to back up on a bare server (repeatable).
    #[arg(long = "backup-path")]
    pub backup_paths: Vec<String>,
    /// A tag that safety levels and maintenance windows in safety.json can
    /// name, e.g. prod or staging (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// The provider account whose token reaches this server (`kastell auth
    /// set PROVIDER --account NAME`); default: the default account.
    #[arg(long)]
    pub account: Option<String>,
    /// The provider's server id (default: looked up by IP, else
    /// manual-<epoch-ms>); checked against the IP when the token is set.
    #[arg(long)]
    pub id: Option<String>,
    /// Add offline: no SSH login and no provider lookup. Needs --platform
    /// (a guessed platform would back up the wrong things).
    #[arg(long)]
    pub no_detect: bool,
}

/// Builds the record `server add` stores, as the original writes it:
/// `manual-<epoch-ms>` id unless given, region and size `unknown`,
/// `createdAt` now (ISO-8601, milliseconds, `Z`), `mode` `bare` for bare
/// servers else `coolify`, `platform` written for Coolify and Dokploy.
///
/// Refuses (`InvalidInput`, with a hint) an invalid name, an invalid or
/// (without `KASTELL_ALLOW_PRIVATE_IPS=true` in `env`) private IP, an
/// unknown provider, an invalid id, account, domain, user or identity
/// file, and a backup path that is not a clean absolute path.
pub(crate) fn record_from_args(
    args: &AddArgs,
    env: &Env,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ServerRecord> {
    validate_name(&args.name)?;
    validate_ip(&args.ip, allow_private_ips(env))?;
    let id = match &args.id {
        Some(id) => ServerId::new(id.as_str())
            .map_err(|e| e.or_hint(ID_HINT))?
            .as_str()
            .to_owned(),
        None => format!("manual-{}", now.timestamp_millis()),
    };
    let mut record = ServerRecord::new(id, args.name.as_str(), args.ip.as_str());
    record.created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Some(provider) = &args.provider {
        if !is_known_provider(provider) {
            let ids = known(FIRST_PARTY_PROVIDERS, Registry::global().provider_ids());
            return Err(unknown("provider", provider, &ids));
        }
        record.provider = Some(provider.clone());
    }
    if let Some(platform) = args.platform.as_deref() {
        if !is_known_platform(platform) {
            let ids = known(FIRST_PARTY_PLATFORMS, Registry::global().platform_ids());
            return Err(unknown("platform", platform, &ids));
        }
        record.set_platform(platform);
    }
    if let Some(domain) = &args.domain {
        check_domain(domain)?;
        record.domain = Some(domain.to_ascii_lowercase());
    }
    let ssh = SshSettings {
        user: args.user.as_deref().map(check_user).transpose()?,
        port: args.port,
        identity_file: args
            .identity_file
            .as_deref()
            .map(check_identity_file)
            .transpose()?,
        host_key: None,
    };
    record.ssh = (!ssh.is_empty()).then_some(ssh);
    for path in &args.backup_paths {
        check_backup_path(path)?;
        if !record.backup_paths.contains(path) {
            record.backup_paths.push(path.clone());
        }
    }
    if let Some(account) = &args.account {
        let name = crate::state::tokens::account_name(Some(account))?;
        record.account = (name != crate::state::tokens::DEFAULT_ACCOUNT).then_some(name);
    }
    for tag in &args.tags {
        crate::state::store::validate_tag(tag)?;
        if !record.tags.contains(tag) {
            record.tags.push(tag.clone());
        }
    }
    Ok(record)
}

fn bad(what: &str, value: &str, hint: &str) -> Error {
    Error::invalid_input(format!(
        "Invalid {what} {}",
        crate::state::store::shown(value)
    ))
    .with_hint(hint.to_owned())
}

fn check_domain(domain: &str) -> Result<()> {
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if domain.len() <= 253 && domain.contains('.') && labels_ok {
        Ok(())
    } else {
        Err(bad(
            "domain",
            domain,
            "Use a plain host name such as panel.example.com (no scheme, port or path)",
        ))
    }
}

fn check_user(user: &str) -> Result<String> {
    let mut bytes = user.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if first_ok && rest_ok && user.len() <= 32 {
        Ok(user.to_owned())
    } else {
        Err(bad(
            "SSH user",
            user,
            "Use a Unix user name: letters, digits, '_', '-' and '.', starting with a letter",
        ))
    }
}

fn check_identity_file(path: &str) -> Result<String> {
    if path.trim().is_empty() || path.chars().any(char::is_control) {
        return Err(bad(
            "identity file",
            path,
            "Give the path of an SSH private key",
        ));
    }
    let absolute =
        std::path::absolute(path).map_err(|e| Error::io(format!("resolving {path}"), e))?;
    if !absolute.is_file() {
        tracing::warn!("identity file {} does not exist (yet)", absolute.display());
    }
    Ok(absolute.to_string_lossy().into_owned())
}

fn check_backup_path(path: &str) -> Result<()> {
    let clean = path.starts_with('/')
        && path.len() <= 4096
        && !path.chars().any(char::is_control)
        && !path.split('/').any(|seg| seg == "..");
    if clean {
        Ok(())
    } else {
        Err(bad(
            "backup path",
            path,
            "Use an absolute path on the server without '..', such as /etc/nginx",
        ))
    }
}

/// Runs `kastell server add`: builds the record from the arguments,
/// applies the policy, then (unless `--no-detect`) looks the server's id
/// up by IP and detects its platform over SSH, and stores the record once
/// all of that is settled. Refuses `--no-detect` without `--platform`, an
/// `--id` the provider lists under another IP, and a server SSH cannot
/// reach for detection; a failed or empty provider lookup is a warning.
pub(super) async fn run(args: AddArgs, ctx: &Context) -> Result<()> {
    let mut record = record_from_args(&args, &ctx.env, chrono::Utc::now())?;
    let policy = ctx.policy()?;
    policy.check(SERVER_ADD.id(), Surface::Cli, Some(&record), |p| {
        policy.env_token_present(p)
    })?;
    let mut notes = Vec::new();
    if args.no_detect {
        if args.platform.is_none() {
            return Err(Error::invalid_input(
                "--no-detect needs --platform: without SSH kastell cannot tell what the server runs",
            )
            .with_hint("Add --platform coolify, --platform dokploy or --platform bare"));
        }
        if let (Some(provider), None) = (&args.provider, &args.id) {
            notes.push(Note::Warning(format!(
                "With --no-detect the id at {provider} was not looked up, so {}. Pass --id to fix that.",
                detect::MANUAL_LOSES
            )));
        }
    } else {
        let octx = super::super::fleet::ops_context(ctx)?;
        notes.extend(
            detect::lookup_provider(
                &octx,
                &mut record,
                args.provider.as_deref(),
                args.id.as_deref(),
            )
            .await?,
        );
    }
    match &args.platform {
        Some(platform) => notes.push(Note::Info(format!(
            "Platform {platform}: given with --platform"
        ))),
        None => notes.push(detect::detect_record_platform(&ctx.env, &mut record).await?),
    }
    let stored = ctx.store()?.add(record)?;
    for note in &notes {
        if let Note::Warning(text) = note {
            crate::surfaces::cli::output::write_stderr(&format!("warning: {text}\n"));
        }
    }
    if ctx.out.is_json() {
        return ctx.out.json(&stored);
    }
    for note in &notes {
        if let Note::Info(text) = note {
            ctx.out.line(text)?;
        }
    }
    ctx.out.line(format_args!(
        "Added server {} ({}), platform {}",
        stored.name,
        stored.ip,
        stored.platform_id()
    ))
}

#[cfg(test)]
#[path = "add_tests.rs"]
mod tests;
