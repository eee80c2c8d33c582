//! kastell's marker on droplet snapshots: the tag `kastell-managed`
//! ([`MANAGED_TAG`], the tag kastell's droplets carry too), put on each
//! snapshot kastell takes once its image exists (`POST /tags/{tag}/resources`
//! with `resource_type` `image`, creating the tag first when the account
//! has none), and read back from the account's snapshot list
//! (`GET /snapshots?resource_type=droplet`, whose objects carry `tags` and
//! the droplet's `resource_id`; the droplet's own snapshot list shows no
//! tags). Rotation deletes only snapshots that carry it.

use kastell_core::types::{MANAGED_TAG, ServerId, Snapshot, SnapshotId};
use kastell_core::{Error, ErrorKind, Idempotency, Result};
use kastell_http::ApiRequest;
use serde_json::json;

use crate::DigitalOcean;
use crate::client::droplet_id;
use crate::pages::{all_pages, split_snapshots};

impl DigitalOcean {
    /// The snapshots of droplet `id`, every page of the account's droplet
    /// snapshots kept to those whose `resource_id` is the droplet, each
    /// marked as kastell's when it carries [`MANAGED_TAG`].
    pub(crate) async fn snapshots_of(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        let droplet = droplet_id(id)?.to_string();
        all_pages(
            &self.api,
            "list_snapshots",
            "snapshots?resource_type=droplet",
            split_snapshots,
        )
        .await?
        .into_iter()
        .filter(|s| s.resource_id.as_deref() == Some(droplet.as_str()))
        .map(|s| s.into_snapshot(id))
        .collect()
    }

    /// Tags image `snapshot` [`MANAGED_TAG`]; when the account has no such
    /// tag yet (404), creates it and tags again. Refused or failed, the
    /// error says the snapshot exists unmarked (billed, and never rotated)
    /// and what to do about it.
    pub(crate) async fn mark_snapshot(&self, snapshot: &SnapshotId) -> Result<()> {
        let path = format!("tags/{MANAGED_TAG}/resources");
        let body = json!({
            "resources": [{"resource_id": snapshot.as_str(), "resource_type": "image"}]
        });
        let tag = || ApiRequest::post(path.clone(), body.clone(), Idempotency::Idempotent);
        let tagged = match self.api.send("tag_snapshot", tag()).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let create = ApiRequest::post(
                    "tags",
                    json!({ "name": MANAGED_TAG }),
                    Idempotency::Idempotent,
                );
                match self.api.send("create_tag", create).await {
                    Ok(_) => self.api.send("tag_snapshot", tag()).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        tagged.map(|_| ()).map_err(|e| unmarked(e, snapshot))
    }
}

fn unmarked(e: Error, snapshot: &SnapshotId) -> Error {
    e.with_context("snapshot", snapshot).with_hint(format!(
        "Snapshot {snapshot} was taken but could not be tagged {MANAGED_TAG}, so snapshot \
         rotation will never delete it (it is billed monthly): tag it {MANAGED_TAG} in the \
         DigitalOcean control panel, or delete it with snapshot-delete"
    ))
}
