//! The simulator's account: instances, disks, images and events, on the
//! virtual clock.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use kastell_sim::{SimOptions, Timeline, private_ip, public_ip};
use serde_json::Value;

use crate::convention::linode_time;

mod create;
mod render;

pub(crate) use create::{NewLinode, region_json, type_json};

/// First instance id; ids stay eight digits, so none is a prefix of another.
pub(crate) const FIRST_INSTANCE: u64 = 41_000_000;
/// Instances created through the API get ids from here.
const FIRST_CREATED: u64 = 41_500_000;
/// A well-formed instance id that exists nowhere.
pub(crate) const MISSING_INSTANCE: u64 = 40_999_999;
/// The other account's instance (and image number), never visible to us.
pub(crate) const FOREIGN: u64 = 99_000_001;
const FIRST_IMAGE: u64 = 38_637_317;
const FIRST_EVENT: u64 = 603_804_661;
const FIRST_DISK: u64 = 183_000_000;
/// The size of each instance's ext4 disk (MB); `specs.disk` adds the swap.
pub(crate) const EXT4_MB: u64 = 25_088;
const SWAP_MB: u64 = 512;

// Virtual durations (seconds) of each job's phases.
const REBOOT: &[(&str, f64)] = &[("rebooting", 4.0), ("booting", 4.0)];
const REBUILD: &[(&str, f64)] = &[("rebuilding", 10.0), ("booting", 5.0)];
const IMAGIZE: &[(&str, f64)] = &[("running", 40.0)];
const PROVISION: &[(&str, f64)] = &[("provisioning", 15.0), ("booting", 10.0)];
/// How long a new event stays `scheduled`.
const SCHEDULED_FOR: f64 = 0.5;

/// Whose a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The account of the simulator's tokens.
    Us,
    /// Another account; every lookup must miss it.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Reboot,
    Rebuild,
    Imagize,
    Provision,
}

#[derive(Debug, Clone)]
struct Job {
    kind: JobKind,
    timeline: Timeline,
}

/// One instance.
#[derive(Debug, Clone)]
pub(crate) struct Linode {
    pub(crate) id: u64,
    pub(crate) owner: Owner,
    label: String,
    public: Ipv4Addr,
    private: Ipv4Addr,
    boots: u64,
    job: Option<Job>,
    image: String,
    tags: Vec<String>,
    kind: &'static str,
    region: &'static str,
    /// Created through `POST /linode/instances` (not seeded).
    pub(crate) via_api: bool,
}

/// One image.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) id: String,
    pub(crate) owner: Owner,
    label: String,
    description: String,
    size_mb: u64,
    is_public: bool,
    created: String,
    ready_at: f64,
    /// Its tags (set when it is captured).
    tags: Vec<String>,
}

#[derive(Debug, Clone)]
struct Event {
    id: u64,
    action: &'static str,
    entity: (u64, String),
    secondary: Option<String>,
    created: String,
    timeline: Timeline,
}

/// Everything the simulator knows.
#[derive(Debug)]
pub(crate) struct State {
    linodes: BTreeMap<u64, Linode>,
    next_linode: u64,
    images: Vec<Image>,
    events: Vec<Event>,
    next_image: u64,
    next_event: u64,
}

/// Why a write was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such resource for this account.
    NotFound,
    /// A job runs on the instance.
    Busy,
    /// A field is wrong: (field, reason).
    Invalid(&'static str, String),
}

impl State {
    /// Seeds `options.servers` instances of ours, one of another account,
    /// public images, an image of ours that kastell did not make, and the
    /// other account's image marked as a snapshot of our first instance.
    pub(crate) fn seed(options: &SimOptions) -> Self {
        let mut linodes = BTreeMap::new();
        for i in 0..options.servers {
            let id = FIRST_INSTANCE + i as u64;
            linodes.insert(id, Linode::new(id, Owner::Us, format!("web-{i}"), i));
        }
        let mut foreign = Linode::new(FOREIGN, Owner::Other, "other-0".into(), 0);
        foreign.public = Ipv4Addr::new(198, 19, 0, 1);
        foreign.private = Ipv4Addr::new(10, 1, 0, 1);
        linodes.insert(FOREIGN, foreign);
        let created = linode_time(SystemTime::now());
        let image = |id: &str, owner, label: &str, description: &str, is_public| Image {
            id: id.to_owned(),
            owner,
            label: label.to_owned(),
            description: description.to_owned(),
            size_mb: if is_public { 2_500 } else { EXT4_MB },
            is_public,
            created: created.clone(),
            ready_at: 0.0,
            tags: Vec::new(),
        };
        let images = vec![
            image(
                "linode/ubuntu24.04",
                Owner::Us,
                "Ubuntu 24.04 LTS",
                "",
                true,
            ),
            image("linode/debian12", Owner::Us, "Debian 12", "", true),
            image(
                "private/38600001",
                Owner::Us,
                "golden-base",
                "my golden image",
                false,
            ),
            image(
                &format!("private/{FOREIGN}"),
                Owner::Other,
                &format!("kastell-{FIRST_INSTANCE}-foreign"),
                &format!("kastell:{FIRST_INSTANCE}"),
                false,
            ),
        ];
        Self {
            linodes,
            next_linode: FIRST_CREATED,
            images,
            events: Vec::new(),
            next_image: FIRST_IMAGE,
            next_event: FIRST_EVENT,
        }
    }

    /// Finishes every job whose timeline ended by `now`.
    pub(crate) fn settle(&mut self, now: f64) {
        for linode in self.linodes.values_mut() {
            let done = linode.job.as_ref().is_some_and(|j| j.timeline.done(now));
            if done {
                if let Some(job) = linode.job.take() {
                    if job.kind != JobKind::Imagize {
                        linode.boots += 1;
                    }
                }
            }
        }
    }

    /// Our instance `id`.
    pub(crate) fn linode(&self, id: u64) -> Option<&Linode> {
        self.linodes.get(&id).filter(|l| l.owner == Owner::Us)
    }

    /// Our instances, in listing order.
    pub(crate) fn linodes(&self) -> impl Iterator<Item = &Linode> {
        self.linodes.values().filter(|l| l.owner == Owner::Us)
    }

    /// Boots of instance `id` (any account), 0 when unknown.
    pub(crate) fn boots(&self, id: u64) -> u64 {
        self.linodes.get(&id).map_or(0, |l| l.boots)
    }

    /// Our image `id` (`private/N` or a public one).
    pub(crate) fn image(&self, id: &str) -> Option<&Image> {
        self.images
            .iter()
            .find(|i| i.id == id && i.owner == Owner::Us)
    }

    /// Our images and the public ones.
    pub(crate) fn images(&self) -> impl Iterator<Item = &Image> {
        self.images.iter().filter(|i| i.owner == Owner::Us)
    }

    /// Deletes our private image `id`.
    pub(crate) fn delete_image(&mut self, id: &str) -> Result<(), Refusal> {
        let at = self
            .images
            .iter()
            .position(|i| i.id == id && i.owner == Owner::Us && !i.is_public)
            .ok_or(Refusal::NotFound)?;
        self.images.remove(at);
        Ok(())
    }

    /// Our event `id`.
    pub(crate) fn event(&self, id: u64, now: f64) -> Option<Value> {
        let ours = |e: &&Event| self.linode(e.entity.0).is_some();
        self.events
            .iter()
            .filter(ours)
            .find(|e| e.id == id)
            .map(|e| e.json(now))
    }

    /// Our events as JSON.
    pub(crate) fn events_json(&self, now: f64) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| self.linode(e.entity.0).is_some())
            .map(|e| e.json(now))
            .collect()
    }

    /// Starts a reboot of our instance `id`.
    pub(crate) fn reboot(&mut self, id: u64, now: f64) -> Result<(), Refusal> {
        self.start(id, JobKind::Reboot, "linode_reboot", None, now)
    }

    /// Starts a rebuild of our instance `id` from our `image`.
    pub(crate) fn rebuild(&mut self, id: u64, image: &str, now: f64) -> Result<Value, Refusal> {
        let linode = self.linode(id).ok_or(Refusal::NotFound)?;
        if linode.job.is_some() {
            return Err(Refusal::Busy);
        }
        let found = self.image(image).ok_or_else(|| {
            Refusal::Invalid(
                "image",
                format!("Image {image} not found or not accessible"),
            )
        })?;
        if found.status(now) != "available" {
            return Err(Refusal::Invalid("image", "Image is not available".into()));
        }
        if found.size_mb > EXT4_MB {
            return Err(Refusal::Invalid(
                "image",
                "Image is larger than this Linode's disk".into(),
            ));
        }
        let image = found.id.clone();
        self.start(
            id,
            JobKind::Rebuild,
            "linode_rebuild",
            Some(image.clone()),
            now,
        )?;
        let linode = self.linodes.get_mut(&id).ok_or(Refusal::NotFound)?;
        linode.image = image;
        Ok(linode.json(now))
    }

    /// Makes an image of disk `disk_id` of one of our instances.
    pub(crate) fn imagize(
        &mut self,
        disk_id: u64,
        label: Option<String>,
        description: String,
        tags: Vec<String>,
        now: f64,
    ) -> Result<Value, Refusal> {
        let linode = self
            .linodes()
            .find(|l| disk_id == l.ext4_disk() || disk_id == l.swap_disk())
            .ok_or_else(|| Refusal::Invalid("disk_id", "Disk not found".into()))?;
        if disk_id == linode.swap_disk() {
            return Err(Refusal::Invalid(
                "disk_id",
                "Cannot make an image of a swap disk".into(),
            ));
        }
        let label = label.unwrap_or_else(|| format!("{}-disk", linode.label));
        if label.is_empty() || label.len() > 64 {
            return Err(Refusal::Invalid(
                "label",
                "Length must be 1-64 characters".into(),
            ));
        }
        if tags.iter().any(|t| !(3..=50).contains(&t.len())) {
            return Err(Refusal::Invalid(
                "tags",
                "Length must be 3-50 characters".into(),
            ));
        }
        let linode_id = linode.id;
        let id = format!("private/{}", self.next_image);
        self.start(
            linode_id,
            JobKind::Imagize,
            "disk_imagize",
            Some(id.clone()),
            now,
        )?;
        self.next_image += 1;
        let duration: f64 = IMAGIZE.iter().map(|(_, d)| d).sum();
        let image = Image {
            id,
            owner: Owner::Us,
            label,
            description,
            size_mb: EXT4_MB,
            is_public: false,
            created: linode_time(SystemTime::now()),
            ready_at: now + duration,
            tags,
        };
        let json = image.json(now);
        self.images.push(image);
        Ok(json)
    }

    fn start(
        &mut self,
        id: u64,
        kind: JobKind,
        action: &'static str,
        secondary: Option<String>,
        now: f64,
    ) -> Result<(), Refusal> {
        let linode = self
            .linodes
            .get_mut(&id)
            .filter(|l| l.owner == Owner::Us)
            .ok_or(Refusal::NotFound)?;
        if linode.job.is_some() {
            return Err(Refusal::Busy);
        }
        let steps = match kind {
            JobKind::Reboot => REBOOT,
            JobKind::Rebuild => REBUILD,
            JobKind::Imagize => IMAGIZE,
            JobKind::Provision => PROVISION,
        };
        let timeline = Timeline::new(now, steps, "running");
        linode.job = Some(Job {
            kind,
            timeline: timeline.clone(),
        });
        self.events.push(Event {
            id: self.next_event,
            action,
            entity: (id, linode.label.clone()),
            secondary,
            created: linode_time(SystemTime::now()),
            timeline,
        });
        self.next_event += 1;
        Ok(())
    }
}

impl Linode {
    fn new(id: u64, owner: Owner, label: String, index: usize) -> Self {
        Self {
            id,
            owner,
            label,
            public: public_ip(index),
            private: private_ip(index),
            boots: 1,
            job: None,
            image: "linode/ubuntu24.04".into(),
            tags: Vec::new(),
            kind: "g6-standard-1",
            region: "us-sea",
            via_api: false,
        }
    }

    fn swap_disk(&self) -> u64 {
        FIRST_DISK + 2 * (self.id - FIRST_INSTANCE.min(self.id))
    }

    fn ext4_disk(&self) -> u64 {
        self.swap_disk() + 1
    }

    /// The status at `now`.
    pub(crate) fn status(&self, now: f64) -> String {
        match &self.job {
            Some(job) => job.timeline.state(now).to_owned(),
            None => "running".to_owned(),
        }
    }

    /// Its public and private addresses.
    pub(crate) fn addresses(&self) -> (Ipv4Addr, Ipv4Addr) {
        (self.public, self.private)
    }
}

impl Image {
    fn status(&self, now: f64) -> &'static str {
        if now < self.ready_at {
            "creating"
        } else {
            "available"
        }
    }
}
