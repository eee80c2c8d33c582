//! Benchmark 6: reboot detection latency. For each simulator, the moment a
//! rebooted server is back (its boot counter rises, watched every
//! millisecond) against the moment `reboot_and_wait` returns, compared with
//! the polling interval in force.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kastell::surfaces::sandbox::clouds::{self, Simulator};
use kastell_core::types::{RebootMode, ServerId};
use kastell_core::{
    CloudProviderExt, Error, PollSchedule, ProviderConfig, Registry, Result, Secret,
};

use crate::measure::{median, ms, quantile};
use crate::report::Section;

/// The poll schedule under test: the sandbox's (the simulators run at
/// 200×, so production's 2 s first poll would only measure the sleep).
fn schedule() -> PollSchedule {
    PollSchedule::new(Duration::from_millis(20), Duration::from_millis(250))
}

/// Watches `server`'s boot counter every millisecond from a thread, and
/// returns when it rose above `boots` (or `None` when stopped first).
fn watch(
    cloud: Arc<Box<dyn Simulator>>,
    server: String,
    boots: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Option<Instant>> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if cloud.boots(&server) > boots {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

/// Reboots one server of every simulator `runs` times.
pub(crate) async fn run(runs: usize) -> Result<Section> {
    let clouds = clouds::start(3, |_| true).await?;
    let mut rows = Vec::new();
    for cloud in clouds {
        let cloud = Arc::new(cloud);
        let id = cloud.provider_id();
        let entry = Registry::global().provider(id)?;
        let provider = (entry.build)(ProviderConfig {
            token: Secret::new(cloud.read_write_token()),
            endpoint: Some(cloud.endpoint()),
            poll: Some(schedule()),
            ..ProviderConfig::default()
        })?;
        let server = cloud
            .server_ids()
            .first()
            .cloned()
            .ok_or_else(|| Error::unexpected("no server"))?;
        let server_id = ServerId::new(server.clone())?;
        let mut lags = Vec::new();
        let mut totals = Vec::new();
        for _ in 0..runs {
            let boots = cloud.boots(&server);
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = watch(cloud.clone(), server.clone(), boots, stop.clone());
            let started = Instant::now();
            provider
                .reboot_and_wait(&server_id, RebootMode::Soft, Duration::from_secs(60))
                .await?;
            let noticed = Instant::now();
            stop.store(true, Ordering::Relaxed);
            let back = watcher
                .join()
                .map_err(|_| Error::unexpected("watcher failed"))?;
            // The server may come back only when the final poll evaluates
            // the simulator's clock; then the lag is ~0.
            let back = back.unwrap_or(noticed);
            lags.push(noticed.saturating_duration_since(back));
            totals.push(noticed - started);
        }
        rows.push(vec![
            id.to_owned(),
            ms(median(&totals)),
            ms(median(&lags)),
            ms(quantile(&lags, 0.9)),
            format!("{}–{}", ms(schedule().initial), ms(schedule().max)),
        ]);
    }
    let mut section = Section::new("6. Reboot detection");
    section.para(format!(
        "Each simulator's first server rebooted {runs} times through `reboot_and_wait`. \"Back\" is \
         the moment the simulator counts the new boot (watched every millisecond from another \
         thread); \"noticed\" is the moment the wait returns. The lag is what polling costs; it \
         is bounded by the poll interval in force, shown beside it."
    ));
    section.table(
        &[
            "provider",
            "reboot, request to noticed (median)",
            "lag after back (median)",
            "lag p90",
            "poll interval",
        ],
        rows,
    );
    Ok(section)
}
