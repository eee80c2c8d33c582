//! The simulated account: droplets, actions and snapshot images on the
//! virtual clock.
//!
//! Nothing runs in the background: every handler first calls
//! [`World::advance`], which settles the actions whose time is up (a reboot
//! counts a boot, a snapshot action adds its image, the droplet unlocks).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use kastell_sim::{Timeline, private_ip, public_ip};

/// Unix seconds of virtual time zero: 2026-08-01T00:00:00Z.
const EPOCH: u64 = 1_785_542_400;
/// Seeded droplet ids start here (`310000000` is `web-0`).
pub(crate) const FIRST_DROPLET: u64 = 310_000_000;
/// A droplet of another account: never visible to our token.
pub(crate) const FOREIGN_DROPLET: u64 = 399_000_001;
/// A well-formed droplet id that exists nowhere.
pub(crate) const MISSING_DROPLET: u64 = 309_999_999;
/// A snapshot of the other account's droplet.
pub(crate) const FOREIGN_IMAGE: u64 = 169_000_001;
const FIRST_IMAGE: u64 = 160_000_000;
/// Droplets created through the API get ids from here.
const FIRST_CREATED: u64 = 350_000_000;
const FIRST_KEY: u64 = 41_000_000;
const FIRST_ACTION: u64 = 36_800_000;

/// Whose resource it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Us,
    Other,
}

/// Why a request is refused, rendered by the routes in DigitalOcean's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    NotFound,
    Busy,
    Unprocessable(String),
}

/// A droplet plan: slug, memory MB, vCPUs, disk GB.
pub(crate) type Plan = (&'static str, u32, u32, u32);
pub(crate) const PLANS: [Plan; 3] = [
    ("s-1vcpu-1gb", 1024, 1, 25),
    ("s-1vcpu-2gb", 2048, 1, 50),
    ("s-2vcpu-4gb", 4096, 2, 80),
];

#[derive(Debug, Clone)]
pub(crate) struct Droplet {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) owner: Owner,
    pub(crate) plan: Plan,
    pub(crate) region: &'static str,
    pub(crate) created_at: f64,
    pub(crate) public_ip: Ipv4Addr,
    pub(crate) private_ip: Ipv4Addr,
    pub(crate) boots: u64,
    /// The action holding the droplet (`locked: true`).
    pub(crate) busy_with: Option<u64>,
    /// Its tags.
    pub(crate) tags: Vec<String>,
    /// The image slug it was created from.
    pub(crate) image: String,
    /// Virtual time it becomes `active` (created ones are `new` until then,
    /// without addresses); its first boot counts then.
    pub(crate) ready_at: f64,
    /// Created through `POST /droplets` (not seeded).
    pub(crate) via_api: bool,
}

impl Droplet {
    /// `new` until it is ready, then `active`.
    pub(crate) fn status(&self, now: f64) -> &'static str {
        if now < self.ready_at { "new" } else { "active" }
    }
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Work {
    Reboot,
    PowerCycle,
    Snapshot { name: String },
    Rebuild { image: u64 },
}

impl Work {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::PowerCycle => "power_cycle",
            Self::Snapshot { .. } => "snapshot",
            Self::Rebuild { .. } => "rebuild",
        }
    }

    /// Virtual seconds the work takes on a droplet with `disk` GB.
    fn duration(&self, disk: u32) -> f64 {
        match self {
            Self::Reboot => 10.0,
            Self::PowerCycle => 6.0,
            Self::Snapshot { .. } => 30.0 + f64::from(disk) * 0.5,
            Self::Rebuild { .. } => 20.0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) id: u64,
    pub(crate) droplet: u64,
    pub(crate) region: &'static str,
    pub(crate) work: Work,
    /// `in-progress` until done, then `completed`.
    pub(crate) timeline: Timeline,
    settled: bool,
}

impl Action {
    pub(crate) fn status(&self, now: f64) -> &str {
        self.timeline.state(now)
    }

    pub(crate) fn completed_at(&self, now: f64) -> Option<f64> {
        self.timeline
            .done(now)
            .then(|| self.timeline.started() + self.timeline.duration())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) droplet: u64,
    pub(crate) owner: Owner,
    pub(crate) region: &'static str,
    pub(crate) created_at: f64,
    pub(crate) size_gigabytes: f64,
    pub(crate) min_disk_size: u32,
    /// Tags put on it with `POST /v2/tags/{tag}/resources`.
    pub(crate) tags: Vec<String>,
}

/// The whole simulated API state.
#[derive(Debug)]
pub(crate) struct World {
    /// `http://127.0.0.1:PORT/v2`, for `links.pages` URLs.
    pub(crate) base: String,
    pub(crate) droplets: Vec<Droplet>,
    pub(crate) actions: BTreeMap<u64, Action>,
    pub(crate) images: Vec<Image>,
    /// Uploaded SSH keys.
    pub(crate) keys: Vec<super::create::Key>,
    /// Tags created with `POST /v2/tags` (a droplet's tags exist too).
    pub(crate) tags: Vec<String>,
    pub(crate) next_droplet: u64,
    pub(crate) next_key: u64,
    next_action: u64,
    next_image: u64,
}

/// ISO-8601 UTC (`2026-08-01T00:00:00Z`) for virtual seconds `t`.
pub(crate) fn iso(t: f64) -> String {
    let secs = (EPOCH as i64 + t.floor() as i64).max(0);
    format!("{}Z", kastell_core::time::utc_datetime(secs))
}

impl World {
    /// `servers` droplets of ours (`web-0`...), one of another account and a
    /// snapshot of it.
    pub(crate) fn seed(servers: usize) -> Self {
        let mut droplets: Vec<Droplet> = (0..servers)
            .map(|i| Droplet {
                id: FIRST_DROPLET + i as u64,
                name: format!("web-{i}"),
                owner: Owner::Us,
                plan: PLANS[i % PLANS.len()],
                region: ["nyc3", "fra1", "ams3"][i % 3],
                created_at: -86_400.0 * 30.0 + i as f64 * 60.0,
                public_ip: public_ip(i),
                private_ip: private_ip(i),
                boots: 1,
                busy_with: None,
                tags: Vec::new(),
                image: "ubuntu-24-04-x64".into(),
                ready_at: f64::NEG_INFINITY,
                via_api: false,
            })
            .collect();
        droplets.push(Droplet {
            id: FOREIGN_DROPLET,
            name: "not-yours".into(),
            owner: Owner::Other,
            plan: PLANS[0],
            region: "sfo3",
            created_at: -86_400.0,
            public_ip: Ipv4Addr::new(198, 19, 255, 1),
            private_ip: Ipv4Addr::new(10, 1, 255, 1),
            boots: 1,
            busy_with: None,
            tags: Vec::new(),
            image: "ubuntu-24-04-x64".into(),
            ready_at: f64::NEG_INFINITY,
            via_api: false,
        });
        let images = vec![Image {
            id: FOREIGN_IMAGE,
            name: "not-yours-snapshot".into(),
            droplet: FOREIGN_DROPLET,
            owner: Owner::Other,
            region: "sfo3",
            created_at: -3_600.0,
            size_gigabytes: 1.87,
            min_disk_size: 25,
            tags: Vec::new(),
        }];
        Self {
            base: String::new(),
            droplets,
            actions: BTreeMap::new(),
            images,
            keys: vec![super::create::Key::person()],
            tags: Vec::new(),
            next_droplet: FIRST_CREATED,
            next_key: FIRST_KEY,
            next_action: FIRST_ACTION,
            next_image: FIRST_IMAGE,
        }
    }

    /// Settles every action whose time is up, in the order they started.
    pub(crate) fn advance(&mut self, now: f64) {
        for droplet in &mut self.droplets {
            if droplet.boots == 0 && now >= droplet.ready_at {
                droplet.boots = 1;
            }
        }
        let due: Vec<u64> = self
            .actions
            .values()
            .filter(|a| !a.settled && a.timeline.done(now))
            .map(|a| a.id)
            .collect();
        for id in due {
            let Some(action) = self.actions.get_mut(&id) else {
                continue;
            };
            action.settled = true;
            let (droplet_id, work, started) = (
                action.droplet,
                action.work.clone(),
                action.timeline.started(),
            );
            let Some(droplet) = self.droplets.iter_mut().find(|d| d.id == droplet_id) else {
                continue;
            };
            if droplet.busy_with == Some(id) {
                droplet.busy_with = None;
            }
            match work {
                Work::Reboot | Work::PowerCycle | Work::Rebuild { .. } => droplet.boots += 1,
                Work::Snapshot { name } => {
                    let disk = droplet.plan.3;
                    let image = Image {
                        id: self.next_image,
                        name,
                        droplet: droplet.id,
                        owner: droplet.owner,
                        region: droplet.region,
                        created_at: started,
                        size_gigabytes: (f64::from(disk) * 9.0 + 34.0).round() / 100.0,
                        min_disk_size: disk,
                        tags: Vec::new(),
                    };
                    self.next_image += 1;
                    self.images.push(image);
                }
            }
        }
    }

    /// Our droplet `id`; another account's is as absent as a missing one.
    pub(crate) fn droplet(&self, id: u64) -> Result<&Droplet, Refusal> {
        self.droplets
            .iter()
            .find(|d| d.id == id && d.owner == Owner::Us)
            .ok_or(Refusal::NotFound)
    }

    /// Our droplets in listing order.
    pub(crate) fn our_droplets(&self) -> Vec<&Droplet> {
        self.droplets
            .iter()
            .filter(|d| d.owner == Owner::Us)
            .collect()
    }

    /// Our snapshot images, all droplets, oldest first.
    pub(crate) fn our_images(&self) -> Vec<&Image> {
        self.images
            .iter()
            .filter(|i| i.owner == Owner::Us)
            .collect()
    }

    /// The snapshots of our droplet `id`.
    pub(crate) fn snapshots_of(&self, id: u64) -> Result<Vec<&Image>, Refusal> {
        self.droplet(id)?;
        Ok(self.images.iter().filter(|i| i.droplet == id).collect())
    }

    /// Our action `id`.
    pub(crate) fn action(&self, id: u64) -> Result<&Action, Refusal> {
        let action = self.actions.get(&id).ok_or(Refusal::NotFound)?;
        self.droplet(action.droplet)?;
        Ok(action)
    }

    /// Starts `work` on our droplet `id` at `now`. Refuses a droplet with an
    /// action in flight (busy) and a rebuild from an image that is not ours
    /// or needs a larger disk.
    pub(crate) fn start(&mut self, now: f64, id: u64, work: Work) -> Result<u64, Refusal> {
        let droplet = self.droplet(id)?;
        if droplet.busy_with.is_some() {
            return Err(Refusal::Busy);
        }
        let disk = droplet.plan.3;
        let region = droplet.region;
        if let Work::Rebuild { image } = &work {
            let image = self
                .our_images()
                .into_iter()
                .find(|i| i.id == *image)
                .ok_or_else(|| Refusal::Unprocessable("You specified an invalid image.".into()))?;
            if image.min_disk_size > disk {
                return Err(Refusal::Unprocessable(
                    "This image requires a Droplet with a larger disk.".into(),
                ));
            }
        }
        let action_id = self.next_action;
        self.next_action += 1;
        let timeline = Timeline::new(now, &[("in-progress", work.duration(disk))], "completed");
        self.actions.insert(
            action_id,
            Action {
                id: action_id,
                droplet: id,
                region,
                work,
                timeline,
                settled: false,
            },
        );
        if let Some(d) = self.droplets.iter_mut().find(|d| d.id == id) {
            d.busy_with = Some(action_id);
        }
        Ok(action_id)
    }

    /// Deletes our snapshot image `id`.
    pub(crate) fn delete_image(&mut self, id: u64) -> Result<(), Refusal> {
        let index = self
            .images
            .iter()
            .position(|i| i.id == id && i.owner == Owner::Us)
            .ok_or(Refusal::NotFound)?;
        self.images.remove(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0.0), "2026-08-01T00:00:00Z");
        assert_eq!(iso(86_400.0 * 31.0 + 3_661.5), "2026-09-01T01:01:01Z");
        assert_eq!(iso(-86_400.0), "2026-07-31T00:00:00Z");
        assert_eq!(iso(86_400.0 * 153.0), "2027-01-01T00:00:00Z");
    }

    #[test]
    fn actions_lock_then_settle() {
        let mut world = World::seed(3);
        let a = FIRST_DROPLET;
        let id = world.start(0.0, a, Work::Reboot).unwrap();
        assert_eq!(world.start(1.0, a, Work::Reboot), Err(Refusal::Busy));
        assert_eq!(world.action(id).unwrap().status(5.0), "in-progress");
        world.advance(5.0);
        assert_eq!(world.droplet(a).unwrap().boots, 1);
        world.advance(10.0);
        assert_eq!(world.droplet(a).unwrap().boots, 2);
        assert_eq!(world.droplet(a).unwrap().busy_with, None);

        let snap = Work::Snapshot { name: "s".into() };
        world.start(20.0, a, snap).unwrap();
        world.advance(21.0);
        assert!(
            world.snapshots_of(a).unwrap().is_empty(),
            "listed only once done"
        );
        world.advance(100.0);
        let images = world.snapshots_of(a).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].created_at, 20.0);
        let image = images[0].id;
        assert_eq!(world.droplet(a).unwrap().boots, 2, "a snapshot is no boot");
        world.start(101.0, a, Work::Rebuild { image }).unwrap();
        world.advance(200.0);
        assert_eq!(world.droplet(a).unwrap().boots, 3);
        world.delete_image(image).unwrap();
        assert_eq!(world.delete_image(image), Err(Refusal::NotFound));
    }

    #[test]
    fn the_other_account_is_invisible() {
        let mut world = World::seed(2);
        assert!(world.droplet(FOREIGN_DROPLET).is_err());
        assert!(world.snapshots_of(FOREIGN_DROPLET).is_err());
        assert_eq!(world.delete_image(FOREIGN_IMAGE), Err(Refusal::NotFound));
        let rebuild = Work::Rebuild {
            image: FOREIGN_IMAGE,
        };
        assert!(matches!(
            world.start(0.0, FIRST_DROPLET, rebuild),
            Err(Refusal::Unprocessable(_))
        ));
        assert_eq!(world.our_droplets().len(), 2);
    }
}
