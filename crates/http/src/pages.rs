//! Collecting every page of a list.

use std::future::Future;

use kastell_core::{Error, Result};

/// More pages than any real account has; a provider that keeps answering
/// "next" beyond this is looping.
pub const MAX_PAGES: usize = 10_000;

/// Calls `fetch` with `None`, then with each returned cursor (page number,
/// URL or opaque cursor) until it returns no cursor, and concatenates the
/// items. Refuses a provider that repeats a cursor or exceeds [`MAX_PAGES`].
pub async fn paginate<T, F, Fut>(mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let (page, next) = fetch(cursor.take()).await?;
        items.extend(page);
        match next.filter(|n| !n.is_empty()) {
            None => return Ok(items),
            Some(next) => {
                if !seen.insert(next.clone()) {
                    return Err(Error::unexpected(format!(
                        "the provider returned page cursor {next:?} twice; stopping to avoid a loop"
                    )));
                }
                cursor = Some(next);
            }
        }
    }
    Err(Error::unexpected(format!(
        "the provider returned more than {MAX_PAGES} pages"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follows_cursors_and_refuses_loops() {
        let all = paginate(|cursor| async move {
            let page: usize = cursor.map(|c| c.parse().unwrap()).unwrap_or(1);
            let next = (page < 3).then(|| (page + 1).to_string());
            Ok((vec![page; 2], next))
        })
        .await
        .unwrap();
        assert_eq!(all, vec![1, 1, 2, 2, 3, 3]);

        let err = paginate(|_| async { Ok((vec![0u8], Some("same".to_owned()))) })
            .await
            .unwrap_err();
        assert!(err.message().contains("twice"));
    }
}
