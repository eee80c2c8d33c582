//! Walking DigitalOcean lists: `per_page=200` (the documented maximum), then
//! `links.pages.next` until it is absent (there are no `links.pages` at all
//! when everything fits on one page).

use kastell_core::Result;
use kastell_http::{ApiClient, ApiRequest, paginate};
use serde::de::DeserializeOwned;

use crate::model::{DoSnapshot, Droplet, DropletPage, Links, SnapshotPage};

/// The documented page size maximum.
const PER_PAGE: &str = "200";

/// The `links.pages.next` URL, if there is a next page.
pub(crate) fn next_page(links: Option<&Links>) -> Option<String> {
    links
        .and_then(|l| l.pages.as_ref())
        .and_then(|p| p.next.clone())
        .filter(|n| !n.is_empty())
}

/// Where to send the request for a `next` link. A link on our endpoint's
/// host is followed as is. A link to another host under the same API path
/// (the vendor's own host, while the endpoint is a proxy) is re-based onto
/// our endpoint, so the token only ever goes to the configured host; any
/// other link is left for the client to refuse.
pub(crate) fn follow(api: &ApiClient, next: &str) -> String {
    let base = api.base_url();
    match base.join(next) {
        Ok(url) if url.origin() != base.origin() && url.path().starts_with(base.path()) => {
            let relative = &url.path()[base.path().len()..];
            match url.query() {
                Some(query) => format!("{relative}?{query}"),
                None => relative.to_owned(),
            }
        }
        _ => next.to_owned(),
    }
}

/// Every item of the list at `first`, across all pages.
pub(crate) async fn all_pages<T, P>(
    api: &ApiClient,
    operation: &'static str,
    first: &str,
    split: fn(P) -> (Vec<T>, Option<String>),
) -> Result<Vec<T>>
where
    P: DeserializeOwned,
{
    paginate(|cursor| {
        let request = match cursor {
            Some(next) => ApiRequest::get(follow(api, &next)),
            None => ApiRequest::get(first).query("per_page", PER_PAGE),
        };
        async move {
            let page: P = api.get_json(operation, request).await?;
            Ok(split(page))
        }
    })
    .await
}

/// The droplets of one page and the next link.
pub(crate) fn split_droplets(page: DropletPage) -> (Vec<Droplet>, Option<String>) {
    let next = next_page(page.links.as_ref());
    (page.droplets.unwrap_or_default(), next)
}

/// The snapshots of one page and the next link.
pub(crate) fn split_snapshots(page: SnapshotPage) -> (Vec<DoSnapshot>, Option<String>) {
    let next = next_page(page.links.as_ref());
    (page.snapshots.unwrap_or_default(), next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::{RetryPolicy, Secret};
    use kastell_http::ClientConfig;
    use std::time::Duration;

    fn api(base: &str) -> ApiClient {
        let config = ClientConfig {
            provider: crate::ID,
            base_url: base.into(),
            token: Secret::new("t"),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::none(),
        };
        ApiClient::new(config, crate::error::map_error).unwrap()
    }

    #[test]
    fn next_links() {
        let page: DropletPage = serde_json::from_str(
            r#"{"droplets": [], "links": {"pages": {
            "next": "https://api.digitalocean.com/v2/droplets?page=2&per_page=20",
            "last": "https://api.digitalocean.com/v2/droplets?page=3&per_page=20"}},
            "meta": {"total": 43}}"#,
        )
        .unwrap();
        let (items, next) = split_droplets(page);
        assert!(items.is_empty());
        assert_eq!(
            next.as_deref(),
            Some("https://api.digitalocean.com/v2/droplets?page=2&per_page=20")
        );
        let single: SnapshotPage =
            serde_json::from_str(r#"{"snapshots": [], "links": {}, "meta": {"total": 0}}"#)
                .unwrap();
        assert_eq!(split_snapshots(single).1, None);
    }

    #[test]
    fn links_stay_on_the_configured_host() {
        let vendor = "https://api.digitalocean.com/v2/droplets?page=2&per_page=200";
        assert_eq!(
            follow(&api("https://api.digitalocean.com/v2"), vendor),
            vendor
        );
        assert_eq!(
            follow(&api("http://127.0.0.1:9/v2"), vendor),
            "droplets?page=2&per_page=200"
        );
        let elsewhere = "https://evil.example/other/droplets?page=2";
        assert_eq!(follow(&api("http://127.0.0.1:9/v2"), elsewhere), elsewhere);
    }
}
