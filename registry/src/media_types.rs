//! The media types of images, each defined once, and the `Accept` list a
//! manifest request sends.

/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Every manifest media type read, in the order a manifest request asks
/// for them: indexes first.
pub const MANIFESTS: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// The `Accept` header of a manifest request: [`MANIFESTS`], comma-separated.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether a media type is an index's (`Some(true)`), an image
/// manifest's (`Some(false)`), or neither.
pub fn index_or_manifest(media_type: &str) -> Option<bool> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Some(true),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_every_manifest_type() {
        assert_eq!(MANIFEST_ACCEPT, MANIFESTS.join(", "));
        assert_eq!(index_or_manifest(DOCKER_LIST), Some(true));
        assert_eq!(index_or_manifest(OCI_MANIFEST), Some(false));
        assert_eq!(index_or_manifest(OCI_CONFIG), None);
    }
}
