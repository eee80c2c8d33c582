//! The simulated Hetzner project: servers, images and actions on the
//! virtual clock.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use kastell_sim::{SimOptions, Timeline, private_ip, public_ip};

/// First id of our seeded servers; all ids have the same width, so no id is
/// a prefix of another in a path.
pub(crate) const FIRST_SERVER: i64 = 42_000_001;
/// A well-formed server id that exists nowhere.
pub(crate) const MISSING_SERVER: i64 = 41_999_999;
/// Another project's server, which our token must never see.
pub(crate) const FOREIGN_SERVER: i64 = 43_000_001;
/// Another project's snapshot.
pub(crate) const FOREIGN_SNAPSHOT: i64 = 7_900_001;
const FIRST_SNAPSHOT: i64 = 7_000_001;
/// First id of servers created through the API.
const FIRST_CREATED: i64 = 42_500_001;
const FIRST_KEY: i64 = 2_300_001;
const FIRST_ACTION: i64 = 9_000_001;
const DAY: f64 = 86_400.0;

/// Virtual seconds each piece of work takes.
pub(crate) mod durations {
    /// Soft reboot (ACPI): the status stays `running`.
    pub(crate) const REBOOT: f64 = 10.0;
    /// Hard reset: `starting` until it is back.
    pub(crate) const RESET: f64 = 8.0;
    /// Snapshot: the server is locked, the image `creating`.
    pub(crate) const SNAPSHOT: f64 = 40.0;
    /// Rebuild: `off`, then `rebuilding` (the action), then `starting`.
    pub(crate) const REBUILD: [f64; 3] = [3.0, 20.0, 5.0];
}

/// A server and what it is doing.
#[derive(Debug)]
pub(crate) struct SimServer {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) ours: bool,
    pub(crate) public: Option<Ipv4Addr>,
    pub(crate) private: Option<Ipv4Addr>,
    pub(crate) created: f64,
    pub(crate) disk: u32,
    pub(crate) status: String,
    pub(crate) boots: u64,
    pub(crate) job: Option<Job>,
    /// Its server type's name (`cx23`).
    pub(crate) server_type: &'static str,
    /// Its location's name (`fsn1`).
    pub(crate) location: &'static str,
    /// The system image it was created from.
    pub(crate) image: String,
    /// Its labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// Created through `POST /servers` (not seeded).
    pub(crate) via_api: bool,
}

/// Work in progress on a server.
#[derive(Debug)]
pub(crate) struct Job {
    timeline: Timeline,
    lock_until: f64,
    boots: bool,
}

impl Job {
    /// Work running through `timeline`, holding the server's lock until
    /// `lock_until`, counting a boot at its end when `boots`.
    pub(crate) fn new(timeline: Timeline, lock_until: f64, boots: bool) -> Self {
        Self {
            timeline,
            lock_until,
            boots,
        }
    }
}

impl SimServer {
    /// Status at `now` (the job's state while one runs).
    pub(crate) fn status_at(&self, now: f64) -> &str {
        match &self.job {
            Some(job) => job.timeline.state(now),
            None => &self.status,
        }
    }

    /// Whether an action holds the server (Hetzner's `locked`).
    pub(crate) fn locked_at(&self, now: f64) -> bool {
        self.job.as_ref().is_some_and(|j| now < j.lock_until)
    }
}

/// An image: a system image or a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct SimImage {
    pub(crate) id: i64,
    pub(crate) kind: &'static str,
    pub(crate) name: Option<String>,
    pub(crate) description: String,
    pub(crate) ours: bool,
    pub(crate) created: f64,
    pub(crate) ready_at: f64,
    pub(crate) size: f64,
    pub(crate) disk: u32,
    pub(crate) from: Option<(i64, String)>,
    pub(crate) protected: bool,
    /// Its action failed: the image ends `unavailable`.
    pub(crate) failed: bool,
    pub(crate) labels: serde_json::Value,
}

impl SimImage {
    /// Whether the image is complete at `now`.
    pub(crate) fn available_at(&self, now: f64) -> bool {
        now >= self.ready_at
    }
}

/// An action, finishing `duration` virtual seconds after `started`.
#[derive(Debug, Clone)]
pub(crate) struct SimAction {
    pub(crate) id: i64,
    pub(crate) command: &'static str,
    pub(crate) started: f64,
    pub(crate) duration: f64,
    pub(crate) resources: Vec<(i64, &'static str)>,
    /// Ends in `error` instead of `success`.
    pub(crate) failed: bool,
}

/// Work to start on a server: its states over time, how long the action
/// (and the lock) lasts, whether it ends in a boot, and a further resource
/// the action names (the image of `create_image`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Work<'a> {
    pub(crate) command: &'static str,
    pub(crate) steps: &'a [(&'a str, f64)],
    pub(crate) action_secs: f64,
    pub(crate) boots: bool,
    pub(crate) extra: Option<(i64, &'static str)>,
}

impl Work<'static> {
    /// A soft reboot: `running` throughout, locked.
    pub(crate) const REBOOT: Self = Self {
        command: "reboot_server",
        steps: &[("running", durations::REBOOT)],
        action_secs: durations::REBOOT,
        boots: true,
        extra: None,
    };
    /// A hard reset: `starting` until back.
    pub(crate) const RESET: Self = Self {
        command: "reset_server",
        steps: &[("starting", durations::RESET)],
        action_secs: durations::RESET,
        boots: true,
        extra: None,
    };
    /// A rebuild: `off`, `rebuilding` (the action), `starting`, `running`.
    pub(crate) const REBUILD: Self = Self {
        command: "rebuild_server",
        steps: &[
            ("off", durations::REBUILD[0]),
            ("rebuilding", durations::REBUILD[1]),
            ("starting", durations::REBUILD[2]),
        ],
        action_secs: durations::REBUILD[0] + durations::REBUILD[1],
        boots: true,
        extra: None,
    };
}

/// Every resource of the simulated world. Times are virtual seconds since
/// the Unix epoch (`origin` + clock).
#[derive(Debug, Default)]
pub(crate) struct World {
    pub(crate) servers: BTreeMap<i64, SimServer>,
    pub(crate) images: BTreeMap<i64, SimImage>,
    pub(crate) actions: BTreeMap<i64, SimAction>,
    /// Uploaded SSH keys.
    pub(crate) ssh_keys: BTreeMap<i64, super::servers::SimKey>,
    pub(crate) next_server: i64,
    pub(crate) next_key: i64,
    next_image: i64,
    next_action: i64,
    /// The next action started fails after its 201.
    pub(crate) fail_next: bool,
}

impl World {
    /// Seeds `options.servers` servers (`web-N`, public and private IPs by
    /// the shared conventions), system images, snapshots spread over more
    /// than one page (with the oldest belonging to the first server), and
    /// another project's server and snapshot. `now` is the start time.
    pub(crate) fn seed(options: &SimOptions, now: f64) -> Self {
        let mut world = World {
            next_image: FIRST_SNAPSHOT,
            next_action: FIRST_ACTION,
            next_server: FIRST_CREATED,
            next_key: FIRST_KEY,
            ..World::default()
        };
        world.ssh_keys.insert(
            super::servers::PERSON_KEY,
            super::servers::SimKey::person(now),
        );
        for i in 0..options.servers {
            let id = FIRST_SERVER + i as i64;
            world.servers.insert(
                id,
                seeded_server(id, format!("web-{i}"), true, i, now - 30.0 * DAY),
            );
        }
        let foreign = seeded_server(FOREIGN_SERVER, "foreign-db".into(), false, 60_000, now);
        world.servers.insert(FOREIGN_SERVER, foreign);
        for (id, name) in [(1, "ubuntu-24.04"), (2, "debian-12"), (3, "rocky-9")] {
            let mut image = world.image(id, "system", None, name.into(), now - 400.0 * DAY);
            image.name = Some(name.into());
            world.images.insert(id, image);
        }
        let ids: Vec<i64> = world.servers.keys().copied().collect();
        for (k, server) in ids.iter().filter(|s| **s != FOREIGN_SERVER).enumerate() {
            if k == 1 || k > 61 {
                continue;
            }
            let age = if k == 0 { 300.0 } else { 100.0 - k as f64 };
            let id = world.next_image();
            let mut image = world.snapshot_of(id, *server, now - age * DAY);
            image.ready_at = image.created;
            image.protected = k == 2;
            world.images.insert(id, image);
        }
        let mut foreign = world.snapshot_of(FOREIGN_SNAPSHOT, FOREIGN_SERVER, now - DAY);
        foreign.ours = false;
        foreign.ready_at = foreign.created;
        world.images.insert(FOREIGN_SNAPSHOT, foreign);
        world
    }

    fn next_image(&mut self) -> i64 {
        let id = self.next_image;
        self.next_image += 1;
        id
    }

    fn image(
        &self,
        id: i64,
        kind: &'static str,
        from: Option<i64>,
        desc: String,
        at: f64,
    ) -> SimImage {
        let from = from.and_then(|s| self.servers.get(&s).map(|v| (s, v.name.clone())));
        let disk = from
            .as_ref()
            .and_then(|(s, _)| self.servers.get(s))
            .map_or(5, |s| s.disk);
        SimImage {
            id,
            kind,
            name: None,
            description: desc,
            ours: true,
            created: at,
            ready_at: at,
            size: 1.2 + (id % 7) as f64 * 0.35,
            disk,
            from,
            protected: false,
            failed: false,
            labels: serde_json::json!({}),
        }
    }

    fn snapshot_of(&self, id: i64, server: i64, at: f64) -> SimImage {
        let name = self.servers.get(&server).map_or("?", |s| s.name.as_str());
        self.image(id, "snapshot", Some(server), format!("seed-{name}"), at)
    }

    /// Finishes the jobs that are done by `now`: the server takes the final
    /// state and counts a boot when the job was one.
    pub(crate) fn settle(&mut self, now: f64) {
        for server in self.servers.values_mut() {
            let done = server.job.as_ref().is_some_and(|j| j.timeline.done(now));
            if let Some(job) = server.job.take_if(|_| done) {
                server.status = job.timeline.state(now).to_owned();
                if job.boots {
                    server.boots += 1;
                }
            }
        }
    }

    /// Starts `work` on `server`. Returns the action.
    pub(crate) fn start(&mut self, now: f64, server: i64, work: Work<'_>) -> SimAction {
        let Work {
            command,
            steps,
            action_secs,
            boots,
            extra,
        } = work;
        self.settle(now);
        let failed = std::mem::take(&mut self.fail_next);
        if let Some(s) = self.servers.get_mut(&server) {
            // An unlocked job still finishing (a rebuild's `starting`) is
            // cut short by the new one.
            if let Some(old) = s.job.take() {
                s.status = "running".into();
                if old.boots {
                    s.boots += 1;
                }
            }
            let last = s.status.clone();
            s.job = Some(Job {
                timeline: Timeline::new(now, steps, &last),
                lock_until: now + action_secs,
                boots: boots && !failed,
            });
        }
        let mut resources = vec![(server, "server")];
        resources.extend(extra);
        self.record_action(now, command, action_secs, resources, failed)
    }

    /// Records an action started at `now` lasting `duration`.
    pub(crate) fn record_action(
        &mut self,
        now: f64,
        command: &'static str,
        duration: f64,
        resources: Vec<(i64, &'static str)>,
        failed: bool,
    ) -> SimAction {
        let id = self.next_action;
        self.next_action += 1;
        let action = SimAction {
            id,
            command,
            started: now,
            duration,
            resources,
            failed,
        };
        self.actions.insert(id, action.clone());
        action
    }

    /// Creates a snapshot of `server`, `creating` until its action ends.
    pub(crate) fn create_snapshot(
        &mut self,
        now: f64,
        server: i64,
        description: String,
        labels: serde_json::Value,
    ) -> (SimImage, SimAction) {
        let id = self.next_image();
        let mut image = self.image(id, "snapshot", Some(server), description, now);
        image.ready_at = now + durations::SNAPSHOT;
        image.labels = labels;
        image.failed = self.fail_next;
        self.images.insert(id, image.clone());
        let work = Work {
            command: "create_image",
            steps: &[("running", durations::SNAPSHOT)],
            action_secs: durations::SNAPSHOT,
            boots: false,
            extra: Some((id, "image")),
        };
        let action = self.start(now, server, work);
        (image, action)
    }
}

fn seeded_server(id: i64, name: String, ours: bool, index: usize, created: f64) -> SimServer {
    SimServer {
        id,
        name,
        ours,
        public: Some(if ours {
            public_ip(index)
        } else {
            Ipv4Addr::new(203, 0, 113, 77)
        }),
        private: ours.then(|| private_ip(index)),
        created,
        disk: 40,
        status: "running".into(),
        boots: 1,
        job: None,
        server_type: "cx23",
        location: "fsn1",
        image: "ubuntu-24.04".into(),
        labels: BTreeMap::new(),
        via_api: false,
    }
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` for Unix seconds, as Hetzner writes times.
pub(crate) fn timestamp(unix: f64) -> String {
    format!(
        "{}+00:00",
        kastell_core::time::utc_datetime(unix.floor() as i64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0.0), "1970-01-01T00:00:00+00:00");
        assert_eq!(timestamp(1_454_198_100.0), "2016-01-30T23:55:00+00:00");
        assert_eq!(timestamp(951_782_400.0), "2000-02-29T00:00:00+00:00");
    }

    #[test]
    fn a_reboot_counts_one_boot_when_it_ends() {
        let mut world = World::seed(
            &SimOptions {
                servers: 3,
                scale: 1.0,
            },
            1000.0,
        );
        let a = FIRST_SERVER;
        world.start(1000.0, a, Work::REBOOT);
        assert!(world.servers[&a].locked_at(1005.0));
        world.settle(1005.0);
        assert_eq!(world.servers[&a].boots, 1);
        world.settle(1010.0);
        assert_eq!(world.servers[&a].boots, 2);
        assert!(!world.servers[&a].locked_at(1010.0));
        world.start(1010.0, a, Work::REBUILD);
        assert_eq!(world.servers[&a].status_at(1011.0), "off");
        assert_eq!(world.servers[&a].status_at(1030.0), "rebuilding");
        assert_eq!(world.servers[&a].status_at(1035.0), "starting");
        assert!(!world.servers[&a].locked_at(1035.0));
        assert_eq!(world.servers[&a].status_at(1040.0), "running");
    }
}
