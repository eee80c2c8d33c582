//! The platform's own secret ([`SecretSpec`]): the key its database is
//! encrypted with, kept outside the database. The backup captures it and
//! the restore puts it back first, before the database is started.
//!
//! Secret values live in [`SecretBytes`], which never formats its bytes;
//! they travel on stdin or come back on stdout, never in a command line, an
//! error, a log line or a report.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use kastell_core::transport::check_status;
use kastell_core::types::{
    ArtifactFormat, ArtifactRecord, ArtifactSink, ArtifactSource, ArtifactSpec,
};
use kastell_core::{BoxRead, Error, ErrorKind, RemoteCommand, Result, TransportExt};
use serde::Deserialize;

use crate::commands;
use crate::platform::PaasPlatform;
use crate::spec::{PaasSpec, SecretSpec};

mod archive;
mod dotenv;
mod restore;

/// Step name: putting the platform's secret back (first, before the
/// database).
pub const STEP_RESTORE_SECRET: &str = "Restore platform secret";

/// The largest Swarm secret Docker accepts (500 KiB).
const MAX_SWARM_SECRET: usize = 500 * 1024;

/// The largest dotenv file read out of a configuration archive.
const MAX_ENV_FILE: u64 = 1024 * 1024;

/// Secret bytes. `Debug` prints `[redacted]`; the bytes are reachable only
/// through [`SecretBytes::expose`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// The bytes themselves: never log or format them.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

/// The Swarm secret this platform last read on its server: the secret's id
/// (Swarm secrets are immutable, so one id is one value) and a keyed hash
/// of the value (a per-process random SipHash key: it cannot be reversed or
/// compared outside this process). A restore runs while the platform is
/// stopped, when the secret cannot be read; this lets it tell "the same
/// secret" from "a different one" after a backup of the same server (the
/// engine's safety backup). `Debug` shows nothing of it.
#[derive(Default)]
pub(crate) struct SeenSecret {
    keys: RandomState,
    last: Mutex<Option<(String, u64)>>,
}

impl fmt::Debug for SeenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeenSecret([redacted])")
    }
}

impl SeenSecret {
    fn fingerprint(&self, value: &SecretBytes) -> u64 {
        self.keys.hash_one(value.expose())
    }

    fn remember(&self, id: &str, value: &SecretBytes) {
        let print = self.fingerprint(value);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((id.to_owned(), print));
    }

    /// Whether the secret with `id` is known to hold `value` (`None`: not
    /// known, the last one seen had another id or none was seen).
    fn same(&self, id: &str, value: &SecretBytes) -> Option<bool> {
        let print = self.fingerprint(value);
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.as_ref() {
            Some((seen, seen_print)) if seen == id => Some(*seen_print == print),
            _ => None,
        }
    }
}

/// What a restore did with the platform secret, as the report words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The server had none; the backup's was created.
    Created,
    /// The server's equals the backup's; nothing was changed.
    Unchanged,
    /// The server's differed and was replaced by the backup's.
    Replaced,
    /// The server's could not be read (the platform is stopped and no
    /// earlier read of it is known), so it was replaced by the backup's.
    ReplacedUncompared,
}

impl Outcome {
    fn words(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Unchanged => "unchanged",
            Self::Replaced => "replaced a different one",
            Self::ReplacedUncompared => {
                "replaced one that could not be compared (it cannot be read while the \
                 platform is stopped, and no backup of this server taken just before knew it)"
            }
        }
    }
}

/// What the backup captured.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The Swarm secret's value.
    pub(crate) secret: Option<SecretBytes>,
    /// The override variable's key (its value, or its file's content).
    pub(crate) key: Option<SecretBytes>,
    /// A warning for the backup report (no secret on a Dokploy from before
    /// it existed; no dotenv file).
    pub(crate) warning: Option<String>,
}

/// What the secret step of a restore leaves for the steps after it.
#[derive(Debug, Default)]
pub(crate) struct SecretStep {
    /// Nothing was in the backup to restore: the step is reported skipped.
    pub(crate) skipped: bool,
    /// A configuration member the step wrote itself, which the
    /// configuration extraction must leave alone.
    pub(crate) written_entry: Option<String>,
    /// Whether the step changed a secret the database may depend on (for
    /// the hint of a failed database restore).
    pub(crate) changed: bool,
}

/// A secret mounted into a service's tasks, from its container spec.
#[derive(Debug, Clone)]
struct Mounted {
    id: String,
    path: String,
}

/// The part of a Swarm service's container spec the secret needs. `Debug`
/// shows the variable names only (values may be secrets).
struct ServiceView {
    env: Vec<(String, String)>,
    secrets: Vec<(String, Mounted)>,
}

impl fmt::Debug for ServiceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceView")
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl ServiceView {
    /// A non-empty value of the variable `name`.
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn mounted(&self, name: &str) -> Option<&Mounted> {
        self.secrets.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

#[derive(Deserialize)]
struct SpecJson {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Secrets", default)]
    secrets: Option<Vec<SecretRefJson>>,
}

#[derive(Deserialize)]
struct SecretRefJson {
    #[serde(rename = "SecretID", default)]
    id: String,
    #[serde(rename = "SecretName", default)]
    name: String,
    #[serde(rename = "File", default)]
    file: Option<FileJson>,
}

#[derive(Deserialize)]
struct FileJson {
    #[serde(rename = "Name", default)]
    name: String,
}

/// Parses `docker service inspect --format '{{json ...ContainerSpec}}'`.
/// The error never quotes the text (it holds the service's environment).
fn parse_service(service: &str, text: &[u8]) -> Result<ServiceView> {
    let json: SpecJson = serde_json::from_slice(text).map_err(|e| {
        Error::unexpected(format!(
            "the container spec of the Swarm service {service} is not the JSON Docker prints \
             (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let env = json
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (entry, String::new()),
        })
        .collect();
    let secrets = json
        .secrets
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let file = s
                .file
                .map(|f| f.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| s.name.clone());
            let path = if file.starts_with('/') {
                file
            } else {
                format!("/run/secrets/{file}")
            };
            (s.name, Mounted { id: s.id, path })
        })
        .collect();
    Ok(ServiceView { env, secrets })
}

/// The id of the secret `name` in `docker secret ls --format '{{.ID}}
/// {{.Name}}'` output.
fn secret_id(listing: &str, name: &str) -> Option<String> {
    listing.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let id = words.next()?;
        (words.next()? == name).then(|| id.to_owned())
    })
}

/// Whether a failed `cat` said the file does not exist.
fn is_missing_file(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("No such file or directory")
}

fn write_raw(sink: &mut dyn ArtifactSink, name: String, bytes: &[u8]) -> Result<ArtifactRecord> {
    let spec = ArtifactSpec {
        name,
        format: ArtifactFormat::Raw,
    };
    let mut writer = sink.open(&spec)?;
    writer
        .write_all(bytes)
        .and_then(|()| writer.flush())
        .map_err(|e| Error::io(format!("writing {}", spec.name), e))?;
    drop(writer);
    sink.seal(&spec.name)
}

fn read_artifact(source: &dyn ArtifactSource, name: &str) -> Result<Option<SecretBytes>> {
    if !source.records().iter().any(|r| r.name == name) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    source
        .open(name)?
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {name}"), e))?;
    if bytes.is_empty() {
        return Err(Error::new(ErrorKind::Corrupt, format!("{name} is empty"))
            .with_hint("Pick another backup of this server: this one's platform secret is empty"));
    }
    Ok(Some(SecretBytes(bytes)))
}

impl PaasPlatform {
    /// Validates the spec's secret (see [`SecretSpec`]): refuses a dotenv
    /// file that is not a configuration entry and variable names a shell
    /// cannot carry.
    pub(crate) fn check_secret_spec(spec: &PaasSpec) -> Result<()> {
        let is_name = |n: &str| {
            !n.is_empty()
                && !n.starts_with(|c: char| c.is_ascii_digit())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        match spec.secret {
            SecretSpec::None => Ok(()),
            SecretSpec::SwarmSecret {
                service,
                name,
                override_var,
            } => {
                if service.is_empty() || name.is_empty() || !override_var.is_none_or(is_name) {
                    return Err(Error::config_invalid(format!(
                        "the {} platform secret needs a service, a secret name and a plain \
                         variable name",
                        spec.display_name
                    )));
                }
                Ok(())
            }
            SecretSpec::EnvKey {
                file,
                key,
                previous,
            } => {
                if !spec.config.entries.contains(&file) {
                    return Err(Error::config_invalid(format!(
                        "the {} platform secret lives in {file}, which is not one of the \
                         configuration entries the backup archives",
                        spec.display_name
                    )));
                }
                if !is_name(key) || !is_name(previous) {
                    return Err(Error::config_invalid(format!(
                        "the {} platform secret needs plain variable names",
                        spec.display_name
                    )));
                }
                Ok(())
            }
        }
    }

    /// Reads the platform secret before the dump, so a host without it
    /// fails before hours of dumping. For [`SecretSpec::SwarmSecret`]: the
    /// service's container spec, its running task, the secret's file in it
    /// and the override variable (or its `_FILE`). Fails when the secret or
    /// key exists but cannot be read (no running task, an unreadable or
    /// empty file); a service with neither (a version from before they
    /// existed) gives a warning instead. Other specs capture nothing here.
    pub(crate) async fn capture_secret(&self) -> Result<Captured> {
        let SecretSpec::SwarmSecret {
            service,
            name,
            override_var,
        } = self.spec.secret
        else {
            return Ok(Captured::default());
        };
        let view = self.service_view(service).await?;
        let task = self.service_task(service).await?;
        let mounted = view.mounted(name).cloned();
        let file_var = override_var.map(|v| format!("{v}_FILE"));
        let key_value = override_var.and_then(|v| view.var(v));
        let key_file = file_var.as_deref().and_then(|v| view.var(v));
        let not_running = |what: &str| {
            Error::not_found(format!(
                "no task of the Swarm service {service} is running, and {what} can only be read \
                 inside it"
            ))
            .with_hint(format!(
                "Start {} (`docker service scale {service}=1`) and back up again: a backup \
                 without it restores a database whose encrypted values nobody can read",
                self.spec.display_name
            ))
        };
        let key = match (key_value, key_file, &task) {
            (Some(value), _, _) => Some(SecretBytes(value.as_bytes().to_vec())),
            (None, Some(path), Some(task)) => {
                let var = file_var.as_deref().unwrap_or_default();
                Some(self.read_task_file(task, path).await?.ok_or_else(|| {
                    Error::not_found(format!(
                        "{var} of the Swarm service {service} names {path}, which its task does \
                         not have"
                    ))
                    .with_hint(format!("Fix {var} on the service, then back up again"))
                })?)
            }
            (None, Some(_), None) => {
                let var = file_var.as_deref().unwrap_or_default();
                return Err(not_running(&format!("the key file {var} names")));
            }
            (None, None, _) => None,
        };
        let secret = match (&task, &mounted) {
            (Some(task), _) => {
                let path = mounted
                    .as_ref()
                    .map_or_else(|| format!("/run/secrets/{name}"), |m| m.path.clone());
                match self.read_task_file(task, &path).await? {
                    Some(value) => Some(value),
                    None if mounted.is_some() => {
                        return Err(Error::not_found(format!(
                            "the Swarm service {service} mounts the secret {name}, but its \
                             running task has no {path}"
                        ))
                        .with_hint(format!(
                            "Let the service settle (`docker service ps {service}`) and back up again"
                        )));
                    }
                    None => None,
                }
            }
            (None, Some(_)) => return Err(not_running(&format!("the secret {name}"))),
            (None, None) => None,
        };
        if let (Some(value), Some(m)) = (&secret, &mounted) {
            self.seen_secret.remember(&m.id, value);
        }
        let warning = (secret.is_none() && key.is_none()).then(|| {
            let var = override_var.unwrap_or("an override variable");
            format!(
                "{} has no secret {name} and no {var} (a version from before it encrypted its \
                 database): the backup holds no platform secret",
                self.spec.display_name
            )
        });
        Ok(Captured {
            secret,
            key,
            warning,
        })
    }

    /// Writes what [`PaasPlatform::capture_secret`] captured as artifacts:
    /// the secret as [`PaasSpec::secret_artifact`], the key as
    /// [`PaasSpec::secret_key_artifact`], byte for byte.
    pub(crate) fn write_secret_artifacts(
        &self,
        sink: &mut dyn ArtifactSink,
        captured: &Captured,
    ) -> Result<Vec<ArtifactRecord>> {
        let mut records = Vec::new();
        if let Some(secret) = &captured.secret {
            records.push(write_raw(
                sink,
                self.spec.secret_artifact(),
                secret.expose(),
            )?);
        }
        if let Some(key) = &captured.key {
            records.push(write_raw(
                sink,
                self.spec.secret_key_artifact(),
                key.expose(),
            )?);
        }
        Ok(records)
    }

    /// Reads the container spec of the Swarm service `service`.
    async fn service_view(&self, service: &str) -> Result<ServiceView> {
        let command = commands::service_container_spec(service)?;
        let out = self
            .transport
            .exec_checked(&command, self.settings.short_timeout)
            .await
            .map_err(|e| {
                e.or_hint(format!(
                    "Check that the {} service {service} exists (`docker service ls`)",
                    self.spec.display_name
                ))
            })?;
        parse_service(service, &out.stdout)
    }

    /// The id of a running task container of `service`, if any.
    async fn service_task(&self, service: &str) -> Result<Option<String>> {
        self.container_id(&commands::find_service_task(service)?)
            .await
    }

    /// The file `path` inside the container `task`: `None` when it does not
    /// exist; an error when it cannot be read or is empty. The error holds
    /// stderr only, never the content.
    async fn read_task_file(&self, task: &str, path: &str) -> Result<Option<SecretBytes>> {
        let command = commands::container_cat(task, path)?;
        let out = self
            .transport
            .exec(&command, self.settings.short_timeout)
            .await?;
        if out.status != 0 && is_missing_file(&out.stderr) {
            return Ok(None);
        }
        check_status(&command, out.status, &out.stderr).map_err(|e| {
            e.with_hint(format!(
                "Could not read {path} in the {} container; check `docker ps` on the server",
                self.spec.display_name
            ))
        })?;
        if out.stdout.is_empty() {
            return Err(Error::new(
                ErrorKind::CommandFailed,
                format!(
                    "{path} in the {} container is empty",
                    self.spec.display_name
                ),
            )
            .with_hint("A platform secret cannot be empty; check the service's secret"));
        }
        Ok(Some(SecretBytes(out.stdout)))
    }

    /// Runs a command that changes the server, with `stdin` when given,
    /// failing with stderr (never stdout) and `hint`. Returns stdout text
    /// (the id `docker secret create` prints).
    async fn change(
        &self,
        command: &RemoteCommand,
        stdin: Option<&SecretBytes>,
        hint: &str,
    ) -> Result<String> {
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stdin: Option<BoxRead> =
            stdin.map(|b| Box::new(Cursor::new(b.expose().to_vec())) as BoxRead);
        let out = self
            .transport
            .exec_streaming(
                command,
                stdin,
                Box::new(Shared::new(stdout.clone())),
                self.settings.service_timeout,
            )
            .await?;
        check_status(command, out.status, &out.stderr).map_err(|e| e.or_hint(hint.to_owned()))?;
        let text = String::from_utf8_lossy(&stdout.lock().unwrap_or_else(|p| p.into_inner()))
            .trim()
            .to_owned();
        Ok(text)
    }
}

/// A writer into a shared buffer (a command's stdout, read after it ends),
/// keeping at most its bound (what comes after is dropped).
pub(crate) struct Shared(Arc<Mutex<Vec<u8>>>, usize);

impl Shared {
    /// A writer into `buf` keeping everything.
    pub(crate) fn new(buf: Arc<Mutex<Vec<u8>>>) -> Self {
        Self(buf, usize::MAX)
    }

    /// A writer into `buf` keeping the first `max` bytes.
    pub(crate) fn bounded(buf: Arc<Mutex<Vec<u8>>>, max: usize) -> Self {
        Self(buf, max)
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.1.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_specs_are_parsed_without_quoting_them() {
        let view = parse_service(
            "dokploy",
            br#"{"Image":"x","Env":["A=1","ENCRYPTION_KEY=k=2","E="],"Secrets":[{"File":{"Name":"dokploy-auth-secret"},"SecretID":"id1","SecretName":"dokploy-auth-secret"},{"SecretID":"id2","SecretName":"other","File":{"Name":"/etc/o"}}]}"#,
        )
        .unwrap();
        assert_eq!(view.var("ENCRYPTION_KEY"), Some("k=2"));
        assert_eq!(view.var("E"), None);
        let m = view.mounted("dokploy-auth-secret").unwrap();
        assert_eq!(
            (m.id.as_str(), m.path.as_str()),
            ("id1", "/run/secrets/dokploy-auth-secret")
        );
        assert_eq!(view.mounted("other").unwrap().path, "/etc/o");
        assert!(!format!("{view:?}").contains("k=2"));
        let empty = parse_service("dokploy", b"{\"Image\":\"x\"}").unwrap();
        assert!(empty.env.is_empty() && empty.secrets.is_empty());
        let err = parse_service("dokploy", b"{\"Env\":[\"SECRET=hunter2\"").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(
            secret_id("id1 a\nid2 dokploy-auth-secret\n", "dokploy-auth-secret").as_deref(),
            Some("id2")
        );
        assert_eq!(secret_id("id1 a\n", "b"), None);
    }

    #[test]
    fn secrets_never_format() {
        let s = SecretBytes(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
        let seen = SeenSecret::default();
        assert_eq!(seen.same("id", &s), None);
        seen.remember("id", &s);
        assert_eq!(seen.same("id", &s), Some(true));
        assert_eq!(
            seen.same("id", &SecretBytes(b"other".to_vec())),
            Some(false)
        );
        assert_eq!(seen.same("id2", &s), None);
        assert!(!format!("{seen:?}").contains("id"));
    }
}
