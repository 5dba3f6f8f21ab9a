//! The node's identity (machine id, optional Kubernetes cluster UID) and its
//! fingerprint: keyed hashes of those ids, so the raw ids never leave the site.
//!
//! Each component is `HMAC-SHA256(key = product id, message = domain || id)`
//! in lowercase hex, with the domains [`MACHINE_DOMAIN`] and
//! [`CLUSTER_DOMAIN`]. Keying with the product id gives unrelated
//! fingerprints for the same machine in different products.

use std::io::Read;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{quote, LicenseError};
use crate::limits::MAX_MACHINE_ID_FILE;
use crate::names::{check_name, is_lower_hex};

/// Where the machine id is read, relative to the root, in order. The second
/// is used when the first is missing or empty.
pub const MACHINE_ID_PATHS: [&str; 2] = ["etc/machine-id", "var/lib/dbus/machine-id"];
/// HMAC message prefix of the machine component.
pub const MACHINE_DOMAIN: &[u8] = b"airgap-license/v1/machine-id\0";
/// HMAC message prefix of the cluster component.
pub const CLUSTER_DOMAIN: &[u8] = b"airgap-license/v1/cluster-uid\0";
/// Length of a fingerprint component in hex digits (SHA-256).
pub const FINGERPRINT_HEX_LEN: usize = 64;

/// A fingerprint component a licence can be bound to.
/// Serialised as `"cluster"` / `"machine"`; the derived order is the order
/// of those strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// The Kubernetes cluster identity (the kube-system namespace UID).
    Cluster,
    /// The machine id.
    Machine,
}

impl Component {
    /// The name used in licence files (`"cluster"`, `"machine"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Cluster => "cluster",
            Component::Machine => "machine",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The raw identity of this node. It stays on the node: only its
/// [`Fingerprint`] goes into requests and licences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIds {
    /// The machine id: 32 lowercase hex digits.
    pub machine_id: String,
    /// The Kubernetes cluster identity (the kube-system namespace UID), a
    /// lowercase UUID, when given.
    pub cluster_uid: Option<String>,
}

impl NodeIds {
    /// Validates and normalises (trims, lowercases) ids given directly.
    pub fn new(machine_id: &str, cluster_uid: Option<&str>) -> Result<Self, LicenseError> {
        Ok(NodeIds {
            machine_id: parse_machine_id(machine_id)
                .map_err(|reason| LicenseError::malformed("machine id", reason))?,
            cluster_uid: cluster_uid.map(parse_cluster_uid).transpose()?,
        })
    }

    /// Reads the machine id under `root` (`/` in production): `etc/machine-id`,
    /// or `var/lib/dbus/machine-id` when that is missing or empty. Reads at
    /// most [`MAX_MACHINE_ID_FILE`] bytes; the content, trimmed, must be 32
    /// hex digits. `cluster_uid` must be a UUID. Errors name the file.
    pub fn read(root: &Path, cluster_uid: Option<&str>) -> Result<Self, LicenseError> {
        let paths: Vec<PathBuf> = MACHINE_ID_PATHS.iter().map(|p| root.join(p)).collect();
        for path in &paths {
            let Some(text) = read_machine_id_file(path)? else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let machine_id = parse_machine_id(&text)
                .map_err(|reason| LicenseError::malformed(&path.display().to_string(), reason))?;
            return Ok(NodeIds {
                machine_id,
                cluster_uid: cluster_uid.map(parse_cluster_uid).transpose()?,
            });
        }
        Err(LicenseError::malformed(
            &paths[0].display().to_string(),
            format!(
                "no machine id: missing or empty, and so is {} (systemd-machine-id-setup creates one)",
                paths[1].display()
            ),
        ))
    }
}

/// `Ok(None)` if the file does not exist.
fn read_machine_id_file(path: &Path) -> Result<Option<String>, LicenseError> {
    let what = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LicenseError::io(&what, e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_MACHINE_ID_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| LicenseError::io(&what, e))?;
    if buf.len() as u64 > MAX_MACHINE_ID_FILE {
        return Err(LicenseError::TooLarge {
            what,
            limit: MAX_MACHINE_ID_FILE,
        });
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| LicenseError::malformed(&what, "not a machine id: not UTF-8 text"))
}

fn parse_machine_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "not a machine id: expected 32 hex digits, found {:?}",
            quote(id)
        ));
    }
    if id.bytes().all(|b| b == b'0') {
        return Err("not a machine id: all zeros".to_string());
    }
    Ok(id.to_ascii_lowercase())
}

fn parse_cluster_uid(text: &str) -> Result<String, LicenseError> {
    let uid = text.trim();
    let groups: Vec<&str> = uid.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(LicenseError::malformed(
            "cluster UID",
            format!(
                "expected a UUID like 0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6b (the UID of the kube-system namespace), found {:?}",
                quote(uid)
            ),
        ));
    }
    Ok(uid.to_ascii_lowercase())
}

/// The fingerprint of a node for one product: keyed hashes, lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// `HMAC-SHA256(product, MACHINE_DOMAIN || machine_id)`, 64 hex digits.
    pub machine: String,
    /// `HMAC-SHA256(product, CLUSTER_DOMAIN || cluster_uid)`, 64 hex digits,
    /// when the node has a cluster UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl Fingerprint {
    /// Computes the fingerprint of `ids` for `product` (a valid product id).
    pub fn compute(product: &str, ids: &NodeIds) -> Result<Self, LicenseError> {
        check_name("product id", product)
            .map_err(|reason| LicenseError::malformed("product", reason))?;
        let component = |domain: &[u8], id: &str| -> Result<String, LicenseError> {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(product.as_bytes())
                .map_err(|e| LicenseError::malformed("product", e.to_string()))?;
            mac.update(domain);
            mac.update(id.as_bytes());
            Ok(hex::encode(mac.finalize().into_bytes()))
        };
        Ok(Fingerprint {
            machine: component(MACHINE_DOMAIN, &ids.machine_id)?,
            cluster: ids
                .cluster_uid
                .as_deref()
                .map(|uid| component(CLUSTER_DOMAIN, uid))
                .transpose()?,
        })
    }

    /// `Ok` if every component is 64 lowercase hex digits.
    pub(crate) fn check(&self) -> Result<(), String> {
        let bad = |name: &str| {
            format!("fingerprint.{name}: expected {FINGERPRINT_HEX_LEN} lowercase hex digits")
        };
        if !is_lower_hex(&self.machine, FINGERPRINT_HEX_LEN) {
            return Err(bad("machine"));
        }
        if let Some(cluster) = &self.cluster {
            if !is_lower_hex(cluster, FINGERPRINT_HEX_LEN) {
                return Err(bad("cluster"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: &str = "0123456789abcdef0123456789abcdef";
    const UID: &str = "0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6b";

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        dir
    }

    #[test]
    fn reads_etc_machine_id_trimmed_and_lowercased() {
        let root = root_with(&[
            ("etc/machine-id", &format!("  {}\n", MID.to_uppercase())),
            (
                "var/lib/dbus/machine-id",
                "ffffffffffffffffffffffffffffffff\n",
            ),
        ]);
        let ids = NodeIds::read(root.path(), Some(&UID.to_uppercase())).unwrap();
        assert_eq!(ids.machine_id, MID);
        assert_eq!(ids.cluster_uid.as_deref(), Some(UID));
    }

    #[test]
    fn falls_back_to_dbus_machine_id() {
        let root = root_with(&[("var/lib/dbus/machine-id", &format!("{MID}\n"))]);
        assert_eq!(NodeIds::read(root.path(), None).unwrap().machine_id, MID);
        // An empty /etc/machine-id (as systemd images ship it) counts as missing.
        let root = root_with(&[
            ("etc/machine-id", "\n"),
            ("var/lib/dbus/machine-id", &format!("{MID}\n")),
        ]);
        assert_eq!(NodeIds::read(root.path(), None).unwrap().machine_id, MID);
    }

    #[test]
    fn missing_machine_id_names_both_files() {
        let root = root_with(&[]);
        let err = NodeIds::read(root.path(), None).unwrap_err().to_string();
        assert!(err.contains("etc/machine-id: no machine id"), "{err}");
        assert!(err.contains("var/lib/dbus/machine-id"), "{err}");
    }

    #[test]
    fn bad_machine_id_refused_naming_the_file() {
        for content in [
            "uninitialized\n",
            "0123456789abcdef0123456789abcde\n",
            "0123456789abcdef0123456789abcdefa\n",
            "0123456789abcdef0123456789abcdeg\n",
            "00000000000000000000000000000000\n",
            "0123456789abcdef 0123456789abcdef\n",
        ] {
            let root = root_with(&[
                ("etc/machine-id", content),
                ("var/lib/dbus/machine-id", &format!("{MID}\n")),
            ]);
            let err = NodeIds::read(root.path(), None).unwrap_err().to_string();
            let path = root.path().join("etc/machine-id").display().to_string();
            assert!(
                err.starts_with(&format!("{path}: not a machine id")),
                "{err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        let root = root_with(&[("var/lib/dbus/machine-id", "garbage")]);
        let err = NodeIds::read(root.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("var/lib/dbus/machine-id: not a machine id"),
            "{err}"
        );
    }

    #[test]
    fn oversized_or_binary_machine_id_refused() {
        let root = root_with(&[("etc/machine-id", &"a".repeat(5000))]);
        let err = NodeIds::read(root.path(), None).unwrap_err().to_string();
        assert!(
            err.ends_with("etc/machine-id: larger than 4096 bytes"),
            "{err}"
        );
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/machine-id"), [0xff, 0xfe, b'\n']).unwrap();
        let err = NodeIds::read(root.path(), None).unwrap_err().to_string();
        assert!(err.contains("etc/machine-id: not a machine id"), "{err}");
    }

    #[test]
    fn bad_cluster_uid_refused() {
        for uid in [
            "",
            "kube-system",
            "0f8e3c1a5b2d4e6f9a7b1c2d3e4f5a6b",
            "0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6",
            "0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6g",
        ] {
            let err = NodeIds::new(MID, Some(uid)).unwrap_err().to_string();
            assert!(err.starts_with("cluster UID: expected a UUID"), "{err}");
        }
    }

    #[test]
    fn fingerprint_is_keyed_domain_separated_and_hides_the_ids() {
        let ids = NodeIds::new(MID, Some(UID)).unwrap();
        let fp = Fingerprint::compute("reference-platform", &ids).unwrap();
        fp.check().unwrap();
        let cluster = fp.cluster.clone().unwrap();
        for text in [&fp.machine, &cluster] {
            assert!(!text.contains(MID) && !text.contains(&UID.replace('-', "")));
        }
        // The documented construction.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"reference-platform").unwrap();
        mac.update(b"airgap-license/v1/machine-id\0");
        mac.update(MID.as_bytes());
        assert_eq!(fp.machine, hex::encode(mac.finalize().into_bytes()));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"reference-platform").unwrap();
        mac.update(b"airgap-license/v1/cluster-uid\0");
        mac.update(UID.as_bytes());
        assert_eq!(cluster, hex::encode(mac.finalize().into_bytes()));
        // Another product, another fingerprint; no cluster, no component.
        let other = Fingerprint::compute("other-product", &ids).unwrap();
        assert_ne!(other.machine, fp.machine);
        let machine_only =
            Fingerprint::compute("reference-platform", &NodeIds::new(MID, None).unwrap()).unwrap();
        assert_eq!(machine_only.machine, fp.machine);
        assert_eq!(machine_only.cluster, None);
        assert!(Fingerprint::compute("Bad Product", &ids).is_err());
    }
}
