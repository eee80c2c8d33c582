//! What `server add` finds out before it stores a record: the provider's
//! id of the server by its IP (at the provider named, or every provider
//! with a token) and, over SSH, the platform it runs. Nothing here writes
//! the store: `server add` stores the record only once both are settled.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use kastell_core::detect::{Detected, detect_platform, detectors};
use kastell_core::types::PlatformRoot;
use kastell_core::{Error, HostKeyInfo, Registry, Result};
use kastell_ssh::SshTransport;

use crate::engine::remote::{DEFAULT_PORT, DEFAULT_USER, ssh_config_pinning};
use crate::env::Env;
use crate::ops;
use crate::policy::TokenEnv;
use crate::state::store::{PLATFORM_BARE, ServerRecord};

/// What a manual record cannot do, in every warning that one was stored.
pub(super) const MANUAL_LOSES: &str =
    "it is stored as a manual server: no snapshots, no reboot through the provider's API";

/// Something `server add` says besides the result: a note on how a field
/// was decided, or a warning that the record is less than it could be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Note {
    /// How something was found or decided (stdout, text mode only).
    Info(String),
    /// What the record lacks and how to fix it (stderr, always).
    Warning(String),
}

/// Looks `record`'s IP up at `named` (the `--provider` given) or, without
/// one, at every registered provider whose token is set, and takes the
/// match's id, provider, region and size, with the token of the
/// record's account (see [`ops::Context::token_for`]). `given_id` is `--id`:
/// when the provider lists the IP under another id, the add is refused
/// (`InvalidInput`), and so is an IP more than one provider lists (name
/// the right one with `--provider`). A provider whose token is missing or
/// whose API fails
/// is a warning, never an error, and leaves the record as it was; so is
/// finding nothing.
pub(super) async fn lookup_provider(
    octx: &ops::Context,
    record: &mut ServerRecord,
    named: Option<&str>,
    given_id: Option<&str>,
) -> Result<Vec<Note>> {
    let mut notes = Vec::new();
    let account = record.account.clone();
    let has_token = |id: &str| octx.token_for(id, account.as_deref()).is_some();
    let ip: Ipv4Addr = record.ip.parse().map_err(|_| {
        Error::invalid_input(format!("Invalid IP address {}", record.ip))
            .with_hint("Use a public IPv4 address such as 203.0.113.10")
    })?;
    let candidates: Vec<&str> = match named {
        Some(id) => vec![id],
        None => Registry::global()
            .provider_ids()
            .into_iter()
            .filter(|id| has_token(id))
            .collect(),
    };
    if let Some(id) = named
        && !has_token(id)
    {
        if given_id.is_none() {
            let account_flag = account
                .as_deref()
                .map(|a| format!(" --account {a}"))
                .unwrap_or_default();
            notes.push(Note::Warning(format!(
                "No token for {id} ({} unset, none stored), so the id of {ip} was not looked up \
                 and {MANUAL_LOSES}. Store one with `kastell auth set {id}{account_flag}` (or pass --id) \
                 and add the server again.",
                TokenEnv::for_account(id, account.as_deref()).var
            )));
        }
        return Ok(notes);
    }
    let mut searched = Vec::new();
    let mut matches = Vec::new();
    for id in candidates {
        let found = match octx.provider_by_id(id, account.as_deref()) {
            Ok(provider) => provider.find_server_by_ip(ip).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(Some(server)) => matches.push((id, server)),
            Ok(None) => searched.push(id),
            Err(e) => notes.push(Note::Warning(format!(
                "Could not search {id} for {ip}: {}",
                ops_error_text(&e)
            ))),
        }
    }
    if matches.len() > 1 {
        let at: Vec<String> = matches
            .iter()
            .map(|(id, server)| format!("server {} at {id}", server.id))
            .collect();
        return Err(Error::invalid_input(format!(
            "{ip} is listed by more than one provider: {}",
            at.join(", ")
        ))
        .with_hint("Name the provider it runs at with --provider"));
    }
    if let Some((id, server)) = matches.pop() {
        if let Some(given) = given_id
            && given != server.id.as_str()
        {
            return Err(Error::invalid_input(format!(
                "--id {given} does not match: {ip} is server {} ({}) at {id}",
                server.id, server.name
            ))
            .with_hint("Leave --id out to take the provider's id, or check --ip"));
        }
        record.id = server.id.as_str().to_owned();
        record.provider = Some(id.to_owned());
        if let Some(region) = server.region.filter(|r| !r.is_empty()) {
            record.region = region;
        }
        if let Some(size) = server.plan.filter(|p| !p.is_empty()) {
            record.size = size;
        }
        notes.push(Note::Info(format!(
            "Found {ip} at {id}: server {} ({}), region {}, size {}",
            server.id, server.name, record.region, record.size
        )));
        return Ok(notes);
    }
    match (given_id, searched.is_empty(), notes.is_empty()) {
        (Some(given), false, _) => notes.push(Note::Warning(format!(
            "No server with IP {ip} at {}: --id {given} is stored unchecked.",
            searched.join(", ")
        ))),
        (None, false, _) => notes.push(Note::Warning(format!(
            "No server with IP {ip} at {}, so {MANUAL_LOSES}. \
             If it is a cloud server, check --ip, or pass --provider and --id.",
            searched.join(", ")
        ))),
        (None, true, false) => notes.push(Note::Warning(format!(
            "The id of {ip} was not found, so {MANUAL_LOSES}. \
             Retry when the API answers, or pass --provider and --id."
        ))),
        _ => {}
    }
    Ok(notes)
}

/// An error as one line: its message and, when it has one, its hint.
fn ops_error_text(e: &Error) -> String {
    match crate::advice::hint(e) {
        Some(hint) => format!("{e} ({hint})"),
        None => e.to_string(),
    }
}

/// Logs in to `record` over SSH (its user, port and identity file) and
/// sets its platform to the first registered platform whose marker exists
/// (see [`kastell_core::detect`]), else `bare`. The host key seen is
/// pinned into the record (it is not in the store yet). Refuses, with
/// the hint to add it offline, when the server cannot be reached or a
/// probe fails.
pub(super) async fn detect_record_platform(env: &Env, record: &mut ServerRecord) -> Result<Note> {
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let pin = {
        let seen = seen.clone();
        Arc::new(move |info: &HostKeyInfo| {
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.fingerprint.clone());
            Ok(())
        })
    };
    let transport = SshTransport::new(ssh_config_pinning(record, env, pin));
    let tried = detectors(Registry::global());
    let detected = detect_platform(&transport, &PlatformRoot::default(), &tried)
        .await
        .map_err(|e| not_detected(record, e))?;
    let note = platform_note(&detected);
    record.set_platform(detected.platform.map_or(PLATFORM_BARE, |p| p.id));
    let key = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(fingerprint) = key {
        let mut ssh = record.ssh.clone().unwrap_or_default();
        ssh.host_key = Some(fingerprint);
        record.ssh = Some(ssh);
    }
    Ok(note)
}

/// How the platform was decided, for the user.
fn platform_note(detected: &Detected) -> Note {
    Note::Info(match (detected.platform, detected.searched.last()) {
        (Some(platform), Some(marker)) => {
            format!("Platform {}: detected ({marker} exists)", platform.id)
        }
        (None, _) if !detected.searched.is_empty() => format!(
            "Platform {}: detected (none of {} exists)",
            PLATFORM_BARE,
            detected.searched.join(", ")
        ),
        _ => format!(
            "Platform {}: no platform in this build detects itself",
            PLATFORM_BARE
        ),
    })
}

/// The refusal when detection could not log in or probe: what was tried,
/// why it failed, and how to add the server without it.
fn not_detected(record: &ServerRecord, e: Error) -> Error {
    let ssh = record.ssh.clone().unwrap_or_default();
    let message = format!(
        "Could not detect the platform of {} over SSH ({}@{}:{}): {}",
        record.name,
        ssh.user.as_deref().unwrap_or(DEFAULT_USER),
        record.ip,
        ssh.port.unwrap_or(DEFAULT_PORT),
        e.message()
    );
    e.with_message(message).with_hint(
        "Check --ip, --user, --port and --identity-file; or add it without SSH: \
         --no-detect --platform coolify|dokploy|bare",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_note_says_what_was_found_or_searched() {
        let coolify = Registry::global().platform("coolify").ok();
        let found = Detected {
            platform: coolify,
            searched: vec!["/etc/dokploy".into(), "/data/coolify/source".into()],
        };
        if coolify.is_some() {
            assert_eq!(
                platform_note(&found),
                Note::Info("Platform coolify: detected (/data/coolify/source exists)".into())
            );
        }
        let none = Detected {
            platform: None,
            searched: vec!["/etc/dokploy".into(), "/data/coolify/source".into()],
        };
        assert_eq!(
            platform_note(&none),
            Note::Info(
                "Platform bare: detected (none of /etc/dokploy, /data/coolify/source exists)"
                    .into()
            )
        );
    }
}
