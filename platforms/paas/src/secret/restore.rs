//! Restoring the platform's secret: the first restore step, before the
//! database starts (see [`SecretSpec`](crate::spec::SecretSpec)).

use kastell_core::types::{ArtifactFormat, ArtifactSource};
use kastell_core::{Error, Result, TransportExt};

use super::archive::tar_member;
use super::dotenv::{dotenv_get, dotenv_set, split_keys};
use super::{
    MAX_ENV_FILE, MAX_SWARM_SECRET, Outcome, SecretBytes, SecretStep, ServiceView, read_artifact,
    secret_id,
};
use crate::commands;
use crate::platform::PaasPlatform;
use crate::spec::SecretSpec;

impl PaasPlatform {
    /// The first restore step: puts the backup's platform secret in place
    /// before the database starts, as [`SecretSpec`] says. Returns what it
    /// leaves for the later steps and the step's detail
    /// (`platform secret restored: ...`). Refuses a backup whose secret
    /// cannot be put back before anything was changed.
    pub(crate) async fn restore_secret(
        &self,
        source: &dyn ArtifactSource,
    ) -> Result<(SecretStep, String)> {
        match self.spec.secret {
            SecretSpec::None => Ok((
                SecretStep {
                    skipped: true,
                    ..SecretStep::default()
                },
                "this platform keeps no secret outside its database".to_owned(),
            )),
            SecretSpec::SwarmSecret {
                service,
                name,
                override_var,
            } => {
                self.restore_swarm_secret(source, service, name, override_var)
                    .await
            }
            SecretSpec::EnvKey {
                file,
                key,
                previous,
            } => self.restore_env_key(source, file, key, previous).await,
        }
    }

    async fn restore_swarm_secret(
        &self,
        source: &dyn ArtifactSource,
        service: &'static str,
        name: &'static str,
        override_var: Option<&'static str>,
    ) -> Result<(SecretStep, String)> {
        let secret = read_artifact(source, &self.spec.secret_artifact())?;
        let key = match override_var {
            Some(_) => read_artifact(source, &self.spec.secret_key_artifact())?,
            None => None,
        };
        if secret.is_none() && key.is_none() {
            return Ok((
                SecretStep {
                    skipped: true,
                    ..SecretStep::default()
                },
                format!(
                    "the backup holds no platform secret (taken from a {} without one, or by an \
                     older kastell): the server's is left as it is",
                    self.spec.display_name
                ),
            ));
        }
        if secret
            .as_ref()
            .is_some_and(|s| s.expose().len() > MAX_SWARM_SECRET)
        {
            return Err(Error::invalid_input(format!(
                "the backup's {} is larger than the {MAX_SWARM_SECRET} bytes Docker takes for a \
                 secret",
                self.spec.secret_artifact()
            ))
            .with_hint("Nothing was changed on the server; restore another backup"));
        }
        if key.as_ref().is_some_and(|k| k.expose().contains(&0)) {
            return Err(Error::invalid_input(format!(
                "the backup's {} holds a NUL byte, which no environment variable can carry",
                self.spec.secret_key_artifact()
            ))
            .with_hint("Nothing was changed on the server; restore another backup"));
        }
        let view = self.service_view(service).await?;
        let task = self.service_task(service).await?;
        let mut parts = Vec::new();
        let mut step = SecretStep::default();
        match &secret {
            Some(value) => {
                let outcome = self
                    .put_swarm_secret(service, name, value, &view, task.as_deref())
                    .await?;
                step.changed |= outcome != Outcome::Unchanged;
                parts.push(outcome.words().to_owned());
            }
            None => parts.push(format!(
                "the backup holds no secret {name} (its {} used only {}): the server's is left \
                 as it is",
                self.spec.display_name,
                override_var.unwrap_or_default()
            )),
        }
        if let Some(var) = override_var {
            if let Some((changed, words)) = self
                .put_override_key(service, var, key.as_ref(), &view, task.as_deref())
                .await?
            {
                step.changed |= changed;
                parts.push(format!("{var}: {words}"));
            }
        }
        Ok((
            step,
            format!("platform secret restored: {}", parts.join("; ")),
        ))
    }

    /// Makes the Swarm secret `name` hold `value` and `service` mount it:
    /// nothing when it already does; else (the service dropping it first,
    /// as secrets are immutable) removed and created again from stdin.
    async fn put_swarm_secret(
        &self,
        service: &str,
        name: &str,
        value: &SecretBytes,
        view: &ServiceView,
        task: Option<&str>,
    ) -> Result<Outcome> {
        let listing = self
            .transport
            .exec_checked(&commands::secret_list(), self.settings.short_timeout)
            .await
            .map_err(|e| e.or_hint("Check that this server is a Swarm manager (`docker info`)"))?
            .stdout_text();
        let current = secret_id(&listing, name);
        let mounted = view.mounted(name);
        let stranded = format!(
            "The service {service} may be left without its secret {name}, and {} cannot decrypt \
             its database without it: create it from the backup's {} artifact (`docker secret \
             create {name} - < <file>`, then `docker service update --secret-add {name} \
             {service}`), or restore the safety backup",
            self.spec.display_name,
            self.spec.secret_artifact()
        );
        let outcome = match &current {
            None => Outcome::Created,
            Some(id) => {
                let same = match (task, mounted) {
                    (Some(task), Some(m)) if &m.id == id => self
                        .read_task_file(task, &m.path)
                        .await?
                        .map(|now| now == *value),
                    _ => self.seen_secret.same(id, value),
                };
                match same {
                    Some(true) => {
                        if mounted.is_none() {
                            let add = commands::service_secret_add(service, name)?;
                            self.change(&add, None, &stranded).await?;
                        }
                        self.seen_secret.remember(id, value);
                        return Ok(Outcome::Unchanged);
                    }
                    Some(false) => Outcome::Replaced,
                    None => Outcome::ReplacedUncompared,
                }
            }
        };
        if mounted.is_some() {
            let drop_it = commands::service_secret_rm(service, name)?;
            self.change(
                &drop_it,
                None,
                &format!(
                    "The service {service} still mounts its secret {name}; nothing was changed"
                ),
            )
            .await?;
        }
        if current.is_some() {
            self.change(&commands::secret_rm(name)?, None, &stranded)
                .await?;
        }
        let id = self
            .change(&commands::secret_create(name)?, Some(value), &stranded)
            .await?;
        let add = commands::service_secret_add(service, name)?;
        self.change(&add, None, &stranded).await?;
        if let Some(id) = id.lines().next_back().filter(|id| !id.trim().is_empty()) {
            self.seen_secret.remember(id.trim(), value);
        }
        Ok(outcome)
    }

    /// Makes the service's override variable `var` hold the backup's key:
    /// set (from stdin, never in a command line) unless it already does,
    /// with a `<var>_FILE` the server had removed so only the backup's key
    /// is configured. Without a key in the backup, a key the server sets
    /// is removed (it would win over the restored secret). `None` when
    /// there was nothing to do, else whether it changed something and what.
    async fn put_override_key(
        &self,
        service: &str,
        var: &str,
        key: Option<&SecretBytes>,
        view: &ServiceView,
        task: Option<&str>,
    ) -> Result<Option<(bool, String)>> {
        let file_var = format!("{var}_FILE");
        let has_value = view.var(var).is_some();
        let has_file = view.var(&file_var).is_some();
        let hint = format!(
            "Check the service {service} (`docker service inspect {service}`): {} decrypts its \
             database with the key set in {var}",
            self.spec.display_name
        );
        let Some(key) = key else {
            let present: Vec<&str> = [(has_value, var), (has_file, file_var.as_str())]
                .iter()
                .filter(|(has, _)| *has)
                .map(|(_, v)| *v)
                .collect();
            if present.is_empty() {
                return Ok(None);
            }
            let command = commands::service_env_rm(service, &present)?;
            self.change(&command, None, &hint).await?;
            return Ok(Some((
                true,
                format!(
                    "removed {} from the service (the backup's {} had none: its database is \
                     encrypted with the secret)",
                    present.join(" and "),
                    self.spec.display_name
                ),
            )));
        };
        let same = match (view.var(var), view.var(&file_var), task) {
            (Some(value), None, _) => Some(value.as_bytes() == key.expose()),
            (None, Some(path), Some(task)) => self
                .read_task_file(task, path)
                .await?
                .map(|now| now == *key),
            _ => None,
        };
        let outcome = match (same, has_value || has_file) {
            (Some(true), _) => return Ok(Some((false, Outcome::Unchanged.words().to_owned()))),
            (_, false) => Outcome::Created,
            (Some(false), true) => Outcome::Replaced,
            (None, true) => Outcome::ReplacedUncompared,
        };
        let command =
            commands::service_env_set_from_stdin(service, var, has_file.then_some(&*file_var))?;
        self.change(&command, Some(key), &hint).await?;
        Ok(Some((true, outcome.words().to_owned())))
    }

    /// Writes the backup's dotenv file, with the backup's key and the
    /// server's former key kept among the previous ones, before the
    /// database starts; the configuration extraction then leaves it alone.
    async fn restore_env_key(
        &self,
        source: &dyn ArtifactSource,
        file: &'static str,
        key: &'static str,
        previous: &'static str,
    ) -> Result<(SecretStep, String)> {
        let skipped = |detail: String| {
            Ok((
                SecretStep {
                    skipped: true,
                    ..SecretStep::default()
                },
                detail,
            ))
        };
        let records = source.records();
        let Some(config) = records.iter().find(|r| r.format == ArtifactFormat::Tar) else {
            return skipped(format!(
                "the backup has no configuration archive, so no {key}: the server's is left as \
                 it is"
            ));
        };
        let Some(member) = tar_member(source.open(&config.name)?, file, MAX_ENV_FILE)? else {
            return skipped(format!(
                "the backup's configuration holds no {file}, so no {key}: the server's is left \
                 as it is"
            ));
        };
        let backup_text = String::from_utf8(member.data).map_err(|_| {
            Error::invalid_input(format!("the backup's {file} is not UTF-8 text"))
                .with_hint("Nothing was changed on the server; restore another backup")
        })?;
        let Some(backup_key) = dotenv_get(&backup_text, key) else {
            return skipped(format!(
                "the backup's {file} has no {key}: it is restored with the configuration as it is"
            ));
        };
        let path = self
            .settings
            .path(&crate::backup::entry_path(self.spec.config.base, file));
        let current = self
            .transport
            .exec_checked(
                &commands::read_file_if_exists(&path)?,
                self.settings.short_timeout,
            )
            .await?;
        let current = String::from_utf8_lossy(&current.stdout).into_owned();
        let server_key = dotenv_get(&current, key);
        let outcome = match &server_key {
            None => Outcome::Created,
            Some(k) if *k == backup_key => Outcome::Unchanged,
            Some(_) => Outcome::Replaced,
        };
        let mut keys: Vec<String> = Vec::new();
        let listed = |text: &str| {
            dotenv_get(text, previous)
                .map(|v| split_keys(&v))
                .unwrap_or_default()
        };
        for k in server_key
            .iter()
            .cloned()
            .chain(listed(&current))
            .chain(listed(&backup_text))
        {
            if k != backup_key && !keys.contains(&k) {
                keys.push(k);
            }
        }
        let text = if keys.is_empty() {
            backup_text
        } else {
            dotenv_set(&backup_text, previous, &keys.join(","))
        };
        let mode = format!("{:o}", member.mode & 0o7777);
        let write = commands::write_file_from_stdin(&path, &mode)?;
        self.change(
            &write,
            Some(&SecretBytes(text.into_bytes())),
            &format!("Could not write {path}; check the disk and its permissions"),
        )
        .await?;
        let why = match outcome {
            Outcome::Created => format!("the server had no {key}"),
            Outcome::Unchanged => format!("the server already had the backup's {key}"),
            _ => format!(
                "the backup's {key} wins: it decrypts the restored database; the server's former \
                 one is kept in {previous}"
            ),
        };
        Ok((
            SecretStep {
                skipped: false,
                written_entry: Some(member.name),
                changed: outcome != Outcome::Unchanged,
            },
            format!(
                "platform secret restored: {} ({why}); {path} written before the database starts",
                outcome.words()
            ),
        ))
    }
}
