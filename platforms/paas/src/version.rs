//! Reading the platform version from its container image tag.

use kastell_core::Result;

use crate::commands;
use crate::platform::PaasPlatform;

/// What [`kastell_core::Platform::version`] answers when the version cannot
/// be read.
pub const UNKNOWN_VERSION: &str = "unknown";

/// The tag of a Docker image reference: `ghcr.io/coollabsio/coolify:4.0.0`
/// gives `4.0.0`, a reference without a tag gives `latest` (Docker's
/// default), and an empty one gives [`UNKNOWN_VERSION`]. A digest
/// (`@sha256:...`) is ignored; a registry port is not mistaken for a tag.
pub fn image_tag(image: &str) -> String {
    let image = image.trim();
    let image = image.split('@').next().unwrap_or("");
    if image.is_empty() {
        return UNKNOWN_VERSION.to_owned();
    }
    match image.rsplit_once(':') {
        Some((_, "")) => UNKNOWN_VERSION.to_owned(),
        Some((_, tag)) if !tag.contains('/') => tag.to_owned(),
        _ => "latest".to_owned(),
    }
}

impl PaasPlatform {
    /// `docker inspect <container> --format '{{.Config.Image}}'`, reduced to
    /// the tag. A failed command or empty output gives [`UNKNOWN_VERSION`];
    /// only transport failures are errors.
    pub(crate) async fn read_version(&self) -> Result<String> {
        let command = commands::version(self.spec)?;
        Ok(match self.read(&command).await? {
            Some(image) => image_tag(&image),
            None => UNKNOWN_VERSION.to_owned(),
        })
    }

    /// [`PaasPlatform::read_version`], with transport failures also reported
    /// as [`UNKNOWN_VERSION`] (for reports that must not fail on it).
    pub(crate) async fn version_or_unknown(&self) -> String {
        match self.read_version().await {
            Ok(version) => version,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the platform version");
                UNKNOWN_VERSION.to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_parsed() {
        assert_eq!(
            image_tag("ghcr.io/coollabsio/coolify:4.0.0-beta.400\n"),
            "4.0.0-beta.400"
        );
        assert_eq!(image_tag("dokploy/dokploy:v0.22.3"), "v0.22.3");
        assert_eq!(image_tag("dokploy/dokploy"), "latest");
        assert_eq!(image_tag("registry:5000/coolify"), "latest");
        assert_eq!(image_tag("registry:5000/coolify:4.1"), "4.1");
        assert_eq!(image_tag("coolify:4.1@sha256:abcd"), "4.1");
        assert_eq!(image_tag(""), UNKNOWN_VERSION);
        assert_eq!(image_tag("  \n"), UNKNOWN_VERSION);
        assert_eq!(image_tag("coolify:"), UNKNOWN_VERSION);
    }
}
