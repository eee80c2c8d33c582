//! The JSON the simulator answers with, in Linode's shapes.

use serde_json::{Value, json};

use super::{EXT4_MB, Event, Image, Linode, SCHEDULED_FOR, SWAP_MB};

impl Linode {
    /// `GET /linode/instances/{id}`: the `ipv4` array lists the private
    /// address first, as real answers may.
    pub(crate) fn json(&self, now: f64) -> Value {
        json!({
            "id": self.id, "label": self.label, "status": self.status(now),
            "type": self.kind, "region": self.region, "image": self.image,
            "ipv4": [self.private.to_string(), self.public.to_string()],
            "ipv6": "2001:db8::1/128", "group": "", "tags": self.tags, "hypervisor": "kvm",
            "specs": {"disk": EXT4_MB + SWAP_MB, "memory": 2048, "vcpus": 1, "transfer": 2000, "gpus": 0},
            "backups": {"enabled": false, "available": false},
            "created": "2026-01-02T03:04:05", "updated": "2026-01-02T03:04:05",
            "alerts": {"cpu": 180, "io": 10000, "network_in": 10, "network_out": 10, "transfer_quota": 80},
            "watchdog_enabled": true, "host_uuid": "3a3ddd59d9a78bb8de041391075df44de62bfec8",
            "disk_encryption": "disabled", "lke_cluster_id": null, "placement_group": null,
            "site_type": "core", "has_user_data": false,
        })
    }

    /// One address of this instance, as `/networking/ips` shows it.
    pub(crate) fn ip_json(&self, public: bool) -> Value {
        let (address, gateway, prefix) = if public {
            (self.public, Some(self.public.to_string()), 24)
        } else {
            (self.private, None, 17)
        };
        json!({
            "address": address.to_string(), "gateway": gateway, "prefix": prefix,
            "subnet_mask": "255.255.255.0", "type": "ipv4", "public": public,
            "rdns": null, "linode_id": self.id, "region": self.region,
        })
    }

    /// `GET /linode/instances/{id}/ips`.
    pub(crate) fn ips_json(&self) -> Value {
        json!({
            "ipv4": {"public": [self.ip_json(true)], "private": [self.ip_json(false)],
                     "shared": [], "reserved": [], "vpc": []},
            "ipv6": {"slaac": {"address": "2001:db8::1", "prefix": 64, "type": "ipv6", "public": true},
                     "link_local": null, "global": []},
        })
    }

    /// `GET /linode/instances/{id}/disks`: swap first, then the ext4 disk.
    pub(crate) fn disks_json(&self) -> Vec<Value> {
        vec![
            json!({"id": self.swap_disk(), "label": "512 MB Swap Image", "status": "ready",
                   "size": SWAP_MB, "filesystem": "swap"}),
            json!({"id": self.ext4_disk(), "label": "Ubuntu Disk", "status": "ready",
                   "size": EXT4_MB, "filesystem": "ext4"}),
        ]
    }
}

impl Image {
    /// `GET /images/{id}`.
    pub(crate) fn json(&self, now: f64) -> Value {
        let vendor = self.is_public.then_some("Linode");
        json!({
            "id": self.id, "label": self.label, "description": self.description,
            "type": "manual", "vendor": vendor, "status": self.status(now), "size": self.size_mb,
            "total_size": self.size_mb, "is_public": self.is_public,
            "created_by": if self.is_public { "linode" } else { "kastell-sim" },
            "created": self.created, "deprecated": false, "regions": [],
            "capabilities": ["cloud-init"], "expiry": null, "eol": null, "tags": self.tags,
        })
    }
}

impl Event {
    /// `GET /account/events/{id}`: `scheduled`, then `started` with its
    /// percentage, then `finished`.
    pub(super) fn json(&self, now: f64) -> Value {
        let elapsed = now - self.timeline.started();
        let (status, percent) = if self.timeline.done(now) {
            ("finished", 100)
        } else if elapsed < SCHEDULED_FOR {
            ("scheduled", 0)
        } else {
            ("started", self.timeline.percent(now))
        };
        let secondary = self.secondary.as_ref().map(
            |id| json!({"id": id, "type": "image", "label": id, "url": format!("/v4/images/{id}")}),
        );
        json!({
            "id": self.id, "action": self.action, "status": status, "percent_complete": percent,
            "time_remaining": null, "rate": null,
            "duration": elapsed.min(self.timeline.duration()).max(0.0),
            "created": self.created,
            "entity": {"id": self.entity.0, "type": "linode", "label": self.entity.1,
                       "url": format!("/v4/linode/instances/{}", self.entity.0)},
            "secondary_entity": secondary, "message": "", "username": "kastell-sim",
            "seen": false, "read": false,
        })
    }
}
