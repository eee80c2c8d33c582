//! The simulated account: instances, snapshots and their progress over
//! virtual time. Handlers call [`State::settle`] first, so finished work
//! (a boot) is counted as soon as anyone looks.

use std::net::Ipv4Addr;

use kastell_sim::{Timeline, private_ip, public_ip};
use serde_json::{Value, json};

use super::util::{is_uuid, iso_at, uuid};

/// Seeds of the generated ids: ours, the other account's, unused.
const OUR_SEED: u64 = 0x7675_6c74;
const OTHER_SEED: u64 = 0x0bad_cafe;
const MISSING_SEED: u64 = 0x4d15_5149;

/// Disk of every seeded instance, GB.
const DISK_GB: u64 = 55;
const REGIONS: [&str; 4] = ["ewr", "ams", "fra", "sgp"];
const BYTES_PER_GB: u64 = 1024 * 1024 * 1024;

/// Why a request is refused; rendered by the routes in Vultr's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// 400 for a malformed id or body.
    Invalid(String),
    /// 404.
    NotFound(&'static str),
    /// 500 "currently locked", with the verb.
    Locked(&'static str),
}

/// Work that locks an instance while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Work {
    Reboot,
    Restore,
}

/// One instance, in our account or (`mine == false`) in another one.
#[derive(Debug, Clone)]
pub(crate) struct SimInstance {
    pub(crate) id: String,
    label: String,
    main_ip: Ipv4Addr,
    internal_ip: Ipv4Addr,
    region: &'static str,
    disk: u64,
    mine: bool,
    pub(crate) boots: u64,
    work: Option<(Work, Timeline)>,
    /// Its tags.
    pub(crate) tags: Vec<String>,
    plan: &'static str,
    ram: u64,
    os_id: u64,
    /// Until then a created instance is `pending` without an address.
    pending_until: f64,
    /// Until then it installs and boots; its first boot counts then.
    ready_at: f64,
    /// Created through `POST /instances` (not seeded).
    pub(crate) via_api: bool,
}

/// What a checked `POST /instances` asks for.
#[derive(Debug)]
pub(crate) struct NewInstance {
    pub(crate) label: String,
    pub(crate) region: &'static str,
    pub(crate) plan: (&'static str, u64, u64),
    pub(crate) os_id: u64,
    pub(crate) tags: Vec<String>,
    pub(crate) main_ip: Ipv4Addr,
}

/// One snapshot. Like Vultr's, it records no instance: only the
/// description can say where it came from.
#[derive(Debug, Clone)]
pub(crate) struct SimSnapshot {
    id: String,
    description: String,
    mine: bool,
    created: f64,
    ready_at: f64,
    size: u64,
}

/// The whole simulated account.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) instances: Vec<SimInstance>,
    snapshots: Vec<SimSnapshot>,
    /// Uploaded SSH keys.
    pub(crate) keys: Vec<super::create::SimKey>,
    pub(crate) next_id: u64,
}

impl State {
    /// `servers` instances of ours with the seeding conventions, one of
    /// another account, and snapshots: one of ours not taken by kastell,
    /// one kastell snapshot of the second server, one of another account.
    pub(crate) fn seeded(servers: usize) -> Self {
        let mut instances: Vec<SimInstance> = (0..servers)
            .map(|i| SimInstance {
                id: uuid(OUR_SEED, i as u64),
                label: format!("web-{i}"),
                main_ip: public_ip(i),
                internal_ip: private_ip(i),
                region: REGIONS[i % REGIONS.len()],
                disk: DISK_GB,
                mine: true,
                boots: 1,
                work: None,
                ..SimInstance::seeded()
            })
            .collect();
        let (foreign_instance, foreign_snapshot) = Self::foreign_ids();
        let stranger = SimInstance {
            id: foreign_instance,
            label: "not-yours".to_owned(),
            main_ip: Ipv4Addr::new(198, 19, 255, 254),
            internal_ip: Ipv4Addr::new(10, 99, 0, 1),
            region: "ewr",
            disk: DISK_GB,
            mine: false,
            boots: 1,
            work: None,
            ..SimInstance::seeded()
        };
        let complete = |id: String, description: String, mine: bool| SimSnapshot {
            id,
            description,
            mine,
            created: 0.0,
            ready_at: 0.0,
            size: DISK_GB * BYTES_PER_GB / 3,
        };
        let mut snapshots = vec![complete(
            foreign_snapshot,
            // Claims our first server, but lives in another account.
            format!("kastell:{}:not-yours", uuid(OUR_SEED, 0)),
            false,
        )];
        if !instances.is_empty() {
            snapshots.push(complete(
                uuid(OUR_SEED, 1_000_000),
                "manual backup".to_owned(),
                true,
            ));
        }
        if let Some(second) = instances.get(1) {
            snapshots.push(complete(
                uuid(OUR_SEED, 1_000_001),
                format!("kastell:{}:seeded", second.id),
                true,
            ));
        }
        instances.push(stranger);
        Self {
            instances,
            snapshots,
            keys: vec![super::create::SimKey::person()],
            next_id: 2_000_000,
        }
    }

    /// A well-formed id of no instance.
    pub(crate) fn missing_id() -> String {
        uuid(MISSING_SEED, 0)
    }

    /// The other account's instance and snapshot.
    pub(crate) fn foreign_ids() -> (String, String) {
        (uuid(OTHER_SEED, 0), uuid(OTHER_SEED, 1))
    }

    /// Finishes work whose timeline ended by `now`, counting boots.
    pub(crate) fn settle(&mut self, now: f64) {
        for instance in &mut self.instances {
            if instance.boots == 0 && now >= instance.ready_at {
                instance.boots = 1;
            }
            if instance.work.as_ref().is_some_and(|(_, t)| t.done(now)) {
                instance.work = None;
                instance.boots += 1;
            }
        }
    }

    /// Our instance `id`: 400 when malformed, 404 when unknown or foreign.
    pub(crate) fn instance(&self, id: &str) -> Result<&SimInstance, Refusal> {
        self.position(id).map(|i| &self.instances[i])
    }

    fn position(&self, id: &str) -> Result<usize, Refusal> {
        if !is_uuid(id) {
            return Err(Refusal::Invalid("invalid instance ID".to_owned()));
        }
        self.instances
            .iter()
            .position(|i| i.mine && i.id == id)
            .ok_or(Refusal::NotFound("instance not found"))
    }

    /// Our instances passing the `main_ip`, `label` and `region` filters.
    pub(crate) fn instances_matching(
        &self,
        filter: &dyn Fn(&str) -> Option<String>,
        now: f64,
    ) -> Vec<Value> {
        let wanted = |key: &str, value: &str| filter(key).is_none_or(|w| w == value);
        self.instances
            .iter()
            .filter(|i| i.mine)
            .filter(|i| wanted("main_ip", &i.main_ip.to_string()))
            .filter(|i| wanted("label", &i.label))
            .filter(|i| wanted("region", i.region))
            .filter(|i| filter("tag").is_none_or(|t| i.tags.contains(&t)))
            .map(|i| i.to_json(now))
            .collect()
    }

    /// Starts a reboot: power off, boot, ready again.
    pub(crate) fn reboot(&mut self, id: &str, now: f64) -> Result<(), Refusal> {
        let at = self.position(id)?;
        let instance = &mut self.instances[at];
        if instance.work.is_some() {
            return Err(Refusal::Locked("reboot"));
        }
        let steps = [
            ("stopped/installingbooting", 3.0),
            ("running/installingbooting", 4.0),
        ];
        instance.work = Some((Work::Reboot, Timeline::new(now, &steps, "running/ok")));
        Ok(())
    }

    /// Starts a snapshot of `instance_id`; `pending` until its size is known.
    pub(crate) fn create_snapshot(
        &mut self,
        instance_id: &str,
        description: &str,
        now: f64,
    ) -> Result<Value, Refusal> {
        let at = self.position(instance_id)?;
        let instance = &self.instances[at];
        if instance.work.is_some() {
            return Err(Refusal::Locked("snapshot"));
        }
        let disk = instance.disk;
        self.next_id += 1;
        let snapshot = SimSnapshot {
            id: uuid(OUR_SEED, self.next_id),
            description: description.to_owned(),
            mine: true,
            created: now,
            ready_at: now + 30.0 + disk as f64 * 0.5,
            size: disk * BYTES_PER_GB * 2 / 5,
        };
        let shown = snapshot.to_json(now);
        self.snapshots.push(snapshot);
        Ok(shown)
    }

    /// Our snapshot `id`: 400 when malformed, 404 when unknown or foreign.
    pub(crate) fn snapshot(&self, id: &str, now: f64) -> Result<Value, Refusal> {
        self.snapshot_position(id)
            .map(|at| self.snapshots[at].to_json(now))
    }

    fn snapshot_position(&self, id: &str) -> Result<usize, Refusal> {
        if !is_uuid(id) {
            return Err(Refusal::Invalid("Invalid UUID format.".to_owned()));
        }
        self.snapshots
            .iter()
            .position(|s| s.mine && s.id == id)
            .ok_or(Refusal::NotFound("snapshot not found"))
    }

    /// Our snapshots, optionally only those whose description is exactly
    /// `description` (the filter's matching is undocumented; exact here).
    pub(crate) fn snapshots(&self, description: Option<&str>, now: f64) -> Vec<Value> {
        self.snapshots
            .iter()
            .filter(|s| s.mine && description.is_none_or(|d| d == s.description))
            .map(|s| s.to_json(now))
            .collect()
    }

    /// Deletes our snapshot `id`.
    pub(crate) fn delete_snapshot(&mut self, id: &str) -> Result<(), Refusal> {
        let at = self.snapshot_position(id)?;
        self.snapshots.remove(at);
        Ok(())
    }

    /// Rebuilds instance `id` from any complete snapshot of our account
    /// (the API does not check where it came from).
    pub(crate) fn restore(&mut self, id: &str, snapshot: &str, now: f64) -> Result<(), Refusal> {
        let at = self.position(id)?;
        let snap = &self.snapshots[self.snapshot_position(snapshot)?];
        if now < snap.ready_at {
            return Err(Refusal::Invalid("Snapshot is not yet complete.".to_owned()));
        }
        let instance = &mut self.instances[at];
        if snap.size > instance.disk * BYTES_PER_GB {
            return Err(Refusal::Invalid(
                "Snapshot is larger than the instance disk.".to_owned(),
            ));
        }
        if instance.work.is_some() {
            return Err(Refusal::Locked("restore"));
        }
        let steps = [("running/locked", 8.0), ("running/installingbooting", 6.0)];
        instance.work = Some((Work::Restore, Timeline::new(now, &steps, "running/ok")));
        Ok(())
    }
}

impl State {
    /// Adds an instance created through the API: `pending` without an
    /// address for 20 s, then installing and booting for 10 s.
    pub(crate) fn create_instance(&mut self, new: NewInstance, now: f64) -> Value {
        self.next_id += 1;
        let (plan, ram, disk) = new.plan;
        let instance = SimInstance {
            id: uuid(OUR_SEED, self.next_id),
            label: new.label,
            main_ip: new.main_ip,
            internal_ip: private_ip(50_000 + self.next_id as usize),
            region: new.region,
            disk,
            mine: true,
            boots: 0,
            work: None,
            tags: new.tags,
            plan,
            ram,
            os_id: new.os_id,
            pending_until: now + 20.0,
            ready_at: now + 30.0,
            via_api: true,
        };
        let shown = instance.to_json(now);
        self.instances.push(instance);
        shown
    }

    /// Deletes our instance `id`.
    pub(crate) fn delete_instance(&mut self, id: &str) -> Result<(), Refusal> {
        let at = self.position(id)?;
        self.instances.remove(at);
        Ok(())
    }
}

impl SimInstance {
    /// The fields every seeded instance shares.
    fn seeded() -> Self {
        Self {
            id: String::new(),
            label: String::new(),
            main_ip: Ipv4Addr::UNSPECIFIED,
            internal_ip: Ipv4Addr::UNSPECIFIED,
            region: "ewr",
            disk: DISK_GB,
            mine: true,
            boots: 1,
            work: None,
            tags: Vec::new(),
            plan: "vc2-1c-2gb",
            ram: 2048,
            os_id: 2284,
            pending_until: f64::NEG_INFINITY,
            ready_at: f64::NEG_INFINITY,
            via_api: false,
        }
    }

    /// Whether it is in our account.
    pub(crate) fn is_mine(&self) -> bool {
        self.mine
    }

    /// The instance as `GET /instances/{id}` shows it (after `settle`).
    pub(crate) fn to_json(&self, now: f64) -> Value {
        let (status, power, server) = if now < self.pending_until {
            ("pending", "stopped", "none")
        } else if now < self.ready_at {
            ("active", "running", "installingbooting")
        } else {
            let (power, server) = match &self.work {
                Some((_, timeline)) => split(timeline.state(now)),
                None => ("running", "ok"),
            };
            ("active", power, server)
        };
        let main_ip = if status == "pending" {
            Ipv4Addr::UNSPECIFIED
        } else {
            self.main_ip
        };
        json!({
            "id": self.id, "label": self.label, "hostname": self.label,
            "os": "Ubuntu 24.04 LTS x64", "os_id": self.os_id, "app_id": 0, "image_id": "",
            "ram": self.ram, "disk": self.disk, "vcpu_count": 1,
            "main_ip": main_ip.to_string(), "internal_ip": self.internal_ip.to_string(),
            "v6_main_ip": "", "v6_network": "", "v6_network_size": 0,
            "netmask_v4": "255.255.254.0", "gateway_v4": "0.0.0.0",
            "allowed_bandwidth": 2, "default_password": "", "kvm": "", "firewall_group_id": "",
            "server_status": server, "status": status, "power_status": power,
            "plan": self.plan, "region": self.region,
            "date_created": "2026-01-01T00:00:00+00:00", "features": [], "tags": self.tags,
            "user_scheme": "root",
        })
    }
}

/// `power/server` timeline states as Vultr's two fields.
fn split(state: &str) -> (&str, &str) {
    state.split_once('/').unwrap_or((state, "ok"))
}

impl SimSnapshot {
    fn to_json(&self, now: f64) -> Value {
        let complete = now >= self.ready_at;
        let size = if complete { self.size } else { 0 };
        json!({
            "id": self.id, "date_created": iso_at(self.created),
            "description": self.description,
            "size": size, "compressed_size": size / 5 * 3,
            "status": if complete { "complete" } else { "pending" },
            "os_id": 2284, "app_id": 0,
        })
    }
}
