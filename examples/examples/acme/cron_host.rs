//! Cron host, a third-party platform in one file: for servers whose job
//! is their scheduled tasks, where what matters is `/etc/crontab` and
//! `/etc/cron.d`. Linked into a kastell build it is a `server add
//! --platform cronhost` choice, listed by `doctor`, and the sandbox runs
//! it (`demo --platform cronhost`, `mcp --sandbox --sandbox-platform
//! cronhost`): backup, verified restore, update and maintain go through
//! kastell's own engine, with no change to kastell.
//!
//! It works under the context's root (every path below it; the sandbox
//! confines it to its fake host's root) and runs without sudo, so it
//! expects to log in as root on a real server. Its backup is one
//! `sink.stream(..)` of a `tar` command: kastell compresses it on the
//! server when the host and the link make that worthwhile, without a word
//! about it here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::transport::check_status;
use kastell_core::types::{
    ArtifactFormat, ArtifactSink, ArtifactSource, ArtifactSpec, BackupReport, BackupStyle, Health,
    PlatformInfo, PlatformRoot, RestoreReport, UpdateOptions, UpdateReport, UpdateStyle,
};
use kastell_core::{
    ArtifactSinkExt, Platform, PlatformCapability, PlatformContext, PlatformDetection,
    PlatformEntry, RemoteCommand, Result, Transport, TransportExt, register_platform,
};

/// The platform's registry id.
const ID: &str = "cronhost";

/// The one artifact of a backup: a tar of the cron tables.
const ARTIFACT: &str = "cron-tables.tar";

/// Prints each cron table missing under the root (`{}`).
const MISSING: &str =
    "cd {} && for p in etc/crontab etc/cron.d; do [ -e \"$p\" ] || echo \"/$p\"; done";

/// Streams a tar of the cron tables present under the root (`{}`).
const TAR: &str = "cd {} && set -- && for p in etc/crontab etc/cron.d; do \
                   [ -e \"$p\" ] && set -- \"$@\" \"$p\"; done; exec tar -cf - \"$@\"";

const QUICK: Duration = Duration::from_secs(60);

const ENTRY: PlatformEntry = PlatformEntry {
    id: ID,
    display_name: "Cron host",
    update: UpdateStyle {
        runs: "a non-interactive apt-get upgrade",
        ..UpdateStyle::OWN_COMMAND
    },
    backup: BackupStyle {
        holds: "the cron tables (/etc/crontab and /etc/cron.d)",
    },
    capability: PlatformCapability {
        version: true,
        health: true,
        update: true,
        update_dry_run: false,
        backup: true,
        backup_restore: true,
        stop_start: false,
    },
    // `server add` recognises a cron host by its marker directory.
    detect: Some(PlatformDetection {
        marker_dir: "/etc/cronhost",
        order: 50,
    }),
    build,
};

register_platform!(ENTRY);

/// Builds the platform; it has nothing to refuse.
fn build(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(CronHost {
        transport: ctx.transport,
        root: ctx.root,
    }))
}

#[derive(Debug)]
struct CronHost {
    transport: Arc<dyn Transport>,
    root: PlatformRoot,
}

impl CronHost {
    /// Runs a `{}`-template with the root as its one value; fails on a
    /// non-zero exit.
    async fn run(&self, template: &'static str, timeout: Duration) -> Result<String> {
        let command = RemoteCommand::template(template, &[self.root.as_str()])?;
        Ok(self
            .transport
            .exec_checked(&command, timeout)
            .await?
            .stdout_text())
    }
}

#[async_trait]
impl Platform for CronHost {
    fn info(&self) -> PlatformInfo {
        ENTRY.info()
    }

    fn capability(&self) -> PlatformCapability {
        ENTRY.capability
    }

    /// A fresh host needs nothing installed to hold cron tables: the
    /// restore unpacks them under the root with `tar`, which must be there
    /// (`kastell recover` onto a new server calls this first).
    async fn install(&self, timeout: Duration) -> Result<String> {
        self.run("command -v tar >/dev/null && mkdir -p {}", timeout)
            .await?;
        Ok("cronhost: nothing to install (tar is there for the restore)".to_owned())
    }

    async fn version(&self) -> Result<String> {
        self.run("uname -sr # {}", QUICK).await
    }

    async fn health(&self) -> Result<Health> {
        let found = self
            .run("if [ -s {}/etc/crontab ]; then echo yes; fi", QUICK)
            .await?;
        let healthy = found == "yes";
        let detail = if healthy {
            "crontab present"
        } else {
            "/etc/crontab is missing or empty"
        };
        Ok(Health {
            healthy,
            detail: detail.to_owned(),
        })
    }

    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        if options.dry_run {
            return Err(kastell_core::capability::unsupported(ID, "update dry run"));
        }
        let before = self.version().await?;
        let upgrade = "DEBIAN_FRONTEND=noninteractive apt-get -y upgrade # {}";
        let output = self.run(upgrade, options.timeout).await?;
        let flag = "if [ -e {}/var/run/reboot-required ]; then echo yes; fi";
        Ok(UpdateReport {
            version_after: Some(self.version().await?),
            version_before: Some(before),
            reboot_required: self.run(flag, QUICK).await? == "yes",
            commands: vec![upgrade.replace(" # {}", "")],
            output_tail: output,
            ..UpdateReport::default()
        })
    }

    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        let missing = self.run(MISSING, QUICK).await?;
        let skipped = missing.lines().map(str::to_owned).collect();
        let tar = RemoteCommand::template(TAR, &[self.root.as_str()])?;
        let spec = ArtifactSpec {
            name: ARTIFACT.to_owned(),
            format: ArtifactFormat::Tar,
        };
        let record = sink
            .stream(self.transport.as_ref(), &spec, &tar, None, QUICK * 10)
            .await?;
        Ok(BackupReport {
            platform_version: self.version().await?,
            artifacts: vec![record],
            skipped,
            warnings: Vec::new(),
            apps: Vec::new(),
        })
    }

    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        let mut report = RestoreReport::default();
        let outcome = report
            .step("Restore cron tables", async {
                let untar = RemoteCommand::template("tar -C {} -xf -", &[self.root.as_str()])?;
                let out = self
                    .transport
                    .exec_streaming(
                        &untar,
                        Some(source.open(ARTIFACT)?),
                        Box::new(std::io::sink()),
                        QUICK * 10,
                    )
                    .await?;
                check_status(&untar, out.status, &out.stderr)?;
                let detail = format!("{} bytes unpacked under {}", out.bytes_sent, self.root);
                Ok(((), detail))
            })
            .await;
        report.conclude(outcome)
    }
}
