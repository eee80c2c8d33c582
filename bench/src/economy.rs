//! Benchmark 5: API requests per operation, counted by each simulator's
//! request log, against the fewest requests the vendor's API allows for
//! the same answer (from the API facts in provider-apis.md).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use kastell::surfaces::sandbox::clouds::{self, Simulator};
use kastell_core::types::{RebootMode, ServerId};
use kastell_core::{
    CloudProvider, CloudProviderExt, Error, PollSchedule, ProviderConfig, Registry, Result, Secret,
};

use crate::report::Section;

/// The fewest requests each API needs, and why.
struct Minimum {
    find_by_ip: (usize, &'static str),
    snapshot_list: (usize, &'static str),
    cycle: (usize, &'static str),
}

fn minimum(provider: &str, servers: usize) -> Minimum {
    let pages = |per_page: usize| servers.div_ceil(per_page);
    match provider {
        "hetzner" => Minimum {
            find_by_ip: (2, "`GET /primary_ips?ip=` then `GET /servers/{id}`"),
            snapshot_list: (
                2,
                "no server filter: the simulator's 61 snapshot images at 50 per page",
            ),
            cycle: (4, "GET server, POST reboot, ≥1 GET action, GET server"),
        },
        "digitalocean" => Minimum {
            find_by_ip: (pages(200), "no IP filter: droplets at 200 per page"),
            snapshot_list: (1, "`GET /droplets/{id}/snapshots?per_page=200`"),
            cycle: (4, "GET droplet, POST action, ≥1 GET action, GET droplet"),
        },
        "vultr" => Minimum {
            find_by_ip: (1, "`GET /instances?main_ip=`"),
            snapshot_list: (1, "`GET /snapshots?description=` (one page of ≤500)"),
            cycle: (
                4,
                "GET instance, POST reboot, ≥1 GET instance until ready, GET instance",
            ),
        },
        "linode" => Minimum {
            find_by_ip: (
                2,
                "`GET /networking/ips/{ip}` then `GET /linode/instances/{id}`",
            ),
            snapshot_list: (1, "`GET /images` with an `X-Filter` on the label"),
            cycle: (
                5,
                "GET instance, POST reboot (no event id), GET events, ≥1 GET event, GET instance",
            ),
        },
        _ => Minimum {
            find_by_ip: (1, "unknown"),
            snapshot_list: (1, "unknown"),
            cycle: (4, "unknown"),
        },
    }
}

fn provider_for(cloud: &dyn Simulator) -> Result<Arc<dyn CloudProvider>> {
    let entry = Registry::global().provider(cloud.provider_id())?;
    (entry.build)(ProviderConfig {
        token: Secret::new(cloud.read_write_token()),
        endpoint: Some(cloud.endpoint()),
        poll: Some(PollSchedule::new(
            Duration::from_millis(20),
            Duration::from_millis(250),
        )),
        ..ProviderConfig::default()
    })
}

/// Requests `cloud` received while `work` ran.
async fn counted<T>(
    cloud: &dyn Simulator,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<usize> {
    cloud.context().recorder.clear();
    work.await?;
    Ok(cloud.context().recorder.all().len())
}

fn cell(count: usize, min: (usize, &str)) -> Vec<String> {
    vec![
        count.to_string(),
        min.0.to_string(),
        format!("{:.2}", count as f64 / min.0.max(1) as f64),
    ]
}

/// Counts requests on accounts of `servers` servers at every simulator.
pub(crate) async fn run(servers: usize) -> Result<Section> {
    let clouds = clouds::start(servers, |_| true).await?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for cloud in &clouds {
        let id = cloud.provider_id();
        let provider = provider_for(cloud.as_ref())?;
        let ids = cloud.server_ids();
        let first = ServerId::new(
            ids.first()
                .cloned()
                .ok_or_else(|| Error::unexpected("no server"))?,
        )?;
        let last_ip: Ipv4Addr = kastell_sim::public_ip(ids.len().saturating_sub(1));
        let min = minimum(id, ids.len());
        let find = counted(cloud.as_ref(), async {
            match provider.find_server_by_ip(last_ip).await? {
                Some(_) => Ok(()),
                None => Err(Error::unexpected(format!("{id}: {last_ip} not found"))),
            }
        })
        .await?;
        let list = counted(cloud.as_ref(), provider.list_snapshots(&first)).await?;
        let cycle = counted(cloud.as_ref(), async {
            provider.get_server(&first).await?;
            provider
                .reboot_and_wait(&first, RebootMode::Soft, Duration::from_secs(60))
                .await?;
            provider.get_server(&first).await
        })
        .await?;
        for (what, count, minimum) in [
            ("find by IP (last server)", find, min.find_by_ip),
            ("snapshot-list (one server)", list, min.snapshot_list),
            ("maintain cycle (provider calls)", cycle, min.cycle),
        ] {
            let mut row = vec![id.to_owned(), what.to_owned()];
            row.extend(cell(count, minimum));
            rows.push(row);
            notes.push(format!(
                "{id}, {what}: minimum {}: {}",
                minimum.0, minimum.1
            ));
        }
    }
    let mut section = Section::new(format!("5. API economy (accounts of {servers} servers)"));
    section.para(
        "Requests each simulator received for one operation, counted from its request log, \
         against the fewest the vendor's API allows for the same answer. The maintain cycle is \
         the provider's share of `maintain`: status, reboot, waiting for it, final status; its \
         polls depend on how long the reboot takes (here the simulators at 200× with polls from \
         20 ms; with production polls from 2 s against a 10–60 s reboot, a handful more).",
    );
    section.table(
        &["provider", "operation", "requests", "minimum", "ratio"],
        rows,
    );
    section.para(format!("Minimums: {}.", notes.join("; ")));
    Ok(section)
}
