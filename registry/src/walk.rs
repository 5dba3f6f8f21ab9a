//! One walker over manifests and indexes, with `oci-spec`'s types: from a
//! top manifest or index down through nested indexes (at most
//! [`MAX_DEPTH`] deep) to every image manifest, its config and layers.
//! Where the bytes come from is the caller's (a registry, a bundle, an
//! OCI layout); each is read once however many indexes list it.

use std::collections::{BTreeMap, BTreeSet};

use airgap_format::Digest;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::media_types::{index_or_manifest, OCI_INDEX, OCI_MANIFEST};

/// Deepest nesting of indexes followed: an index of indexes of … four
/// levels down, then manifests.
pub const MAX_DEPTH: usize = 4;

/// A manifest or an index, parsed.
#[derive(Clone, Debug)]
pub enum Node {
    /// An image index (or Docker manifest list).
    Index(Box<ImageIndex>),
    /// An image manifest (OCI, Docker v2, or an artifact such as a chart).
    Manifest(Box<ImageManifest>),
}

/// The media type of a manifest or index: `declared` (by the descriptor
/// that points at it, or a header), else its own `mediaType` field, else
/// what its shape says (`manifests` makes an index).
pub fn media_type(json: &serde_json::Value, declared: Option<&str>) -> String {
    declared
        .filter(|d| !d.is_empty())
        .or_else(|| json.get("mediaType").and_then(|m| m.as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            if json.get("manifests").is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        })
}

/// Parses a manifest or index, whose media type is `declared` when known
/// ([`media_type`]); returns that media type and the parsed document. A
/// media type that is neither is read by its shape.
pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<(String, Node)> {
    let json: serde_json::Value = serde_json::from_slice(bytes).context("not JSON")?;
    let mt = media_type(&json, declared);
    let index = index_or_manifest(&mt).unwrap_or_else(|| json.get("manifests").is_some());
    let node = if index {
        Node::Index(Box::new(
            serde_json::from_value(json).context("not a valid image index")?,
        ))
    } else {
        Node::Manifest(Box::new(
            serde_json::from_value(json).context("not a valid image manifest")?,
        ))
    };
    Ok((mt, node))
}

/// A descriptor's digest, as ours.
pub fn digest_of(d: &Descriptor) -> Result<Digest> {
    d.digest().to_string().parse().map_err(|e| anyhow!("{e}"))
}

/// What a walk found.
#[derive(Clone, Debug, Default)]
pub struct Walked {
    /// Every manifest and index, each once, children before the index
    /// that lists them (the order to push them in): digest, media type,
    /// bytes.
    pub manifests: Vec<(Digest, String, Vec<u8>)>,
    /// Every config and layer, each once, in the order met: digest, size,
    /// media type.
    pub blobs: Vec<(Digest, u64, String)>,
    /// Every manifest, index, config and layer, each once, in the order
    /// first met, a parent before its children (the order a bundle lists
    /// an image's blobs in).
    pub preorder: Vec<Digest>,
    /// Each manifest and index, parsed, by digest.
    pub parsed: BTreeMap<Digest, Node>,
}

impl Walked {
    /// The size and media type of any manifest, index, config or layer
    /// the walk met.
    pub fn describe(&self, digest: &Digest) -> Option<(u64, &str)> {
        self.manifests
            .iter()
            .find(|m| m.0 == *digest)
            .map(|m| (m.2.len() as u64, m.1.as_str()))
            .or_else(|| {
                self.blobs
                    .iter()
                    .find(|b| b.0 == *digest)
                    .map(|b| (b.1, b.2.as_str()))
            })
    }
}

/// Reads a child manifest or index by digest and size (checking both):
/// its bytes, or `None` to skip it (a registry that no longer has it).
pub type ReadFn<'r> = dyn FnMut(&Digest, u64) -> Result<Option<Vec<u8>>> + 'r;

/// Walks from the top manifest or index `top` (its digest, media type if
/// known, and bytes, already checked), reading each child with `read`.
/// Indexes nested deeper than [`MAX_DEPTH`] are an error, and so is a
/// child listed again with another size than the one it has.
pub fn walk(top: (Digest, Option<&str>, Vec<u8>), read: &mut ReadFn) -> Result<Walked> {
    let mut w = Walker {
        read,
        out: Walked::default(),
        sizes: BTreeMap::new(),
        blobs: BTreeSet::new(),
        met: BTreeSet::new(),
    };
    let (digest, declared, bytes) = top;
    w.visit(digest, declared, bytes, 0)?;
    Ok(w.out)
}

struct Walker<'a, 'r> {
    read: &'a mut ReadFn<'r>,
    out: Walked,
    /// Manifests and indexes met (walked or being walked), with their size.
    sizes: BTreeMap<Digest, u64>,
    blobs: BTreeSet<Digest>,
    /// Everything in `out.preorder`.
    met: BTreeSet<Digest>,
}

impl Walker<'_, '_> {
    fn visit(
        &mut self,
        digest: Digest,
        declared: Option<&str>,
        bytes: Vec<u8>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            bail!("indexes nested deeper than {MAX_DEPTH}");
        }
        let (mt, node) = parse(&bytes, declared).with_context(|| format!("manifest {digest}"))?;
        self.sizes.insert(digest, bytes.len() as u64);
        if self.met.insert(digest) {
            self.out.preorder.push(digest);
        }
        match &node {
            Node::Index(index) => {
                for child in index.manifests() {
                    let d = digest_of(child).with_context(|| format!("index {digest}"))?;
                    if let Some(&size) = self.sizes.get(&d) {
                        if size != child.size() {
                            bail!(
                                "index {digest} lists {d} with size {}, but it is {size} bytes",
                                child.size()
                            );
                        }
                        continue;
                    }
                    if let Some(child_bytes) = (self.read)(&d, child.size())? {
                        let mt = child.media_type().to_string();
                        self.visit(d, Some(&mt), child_bytes, depth + 1)?;
                    }
                }
            }
            Node::Manifest(m) => {
                for b in std::iter::once(m.config()).chain(m.layers()) {
                    let d = digest_of(b).with_context(|| format!("manifest {digest}"))?;
                    if self.blobs.insert(d) {
                        self.out
                            .blobs
                            .push((d, b.size(), b.media_type().to_string()));
                    }
                    if self.met.insert(d) {
                        self.out.preorder.push(d);
                    }
                }
            }
        }
        self.out.parsed.insert(digest, node);
        self.out.manifests.push((digest, mt, bytes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn desc(mt: &str, bytes: &[u8]) -> String {
        format!(
            r#"{{"mediaType":"{mt}","digest":"{}","size":{}}}"#,
            Digest::of(bytes),
            bytes.len()
        )
    }

    fn manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
        let layers: Vec<String> = layers
            .iter()
            .map(|l| desc("application/vnd.oci.image.layer.v1.tar+gzip", l))
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
            desc("application/vnd.oci.image.config.v1+json", config),
            layers.join(",")
        )
        .into_bytes()
    }

    fn index(children: &[&[u8]]) -> Vec<u8> {
        let list: Vec<String> = children
            .iter()
            .map(|c| {
                let mt = if String::from_utf8_lossy(c).contains("\"manifests\"") {
                    OCI_INDEX
                } else {
                    OCI_MANIFEST
                };
                desc(mt, c)
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            list.join(",")
        )
        .into_bytes()
    }

    /// Walks `top` over a store of `docs`; also returns the reads made.
    fn run(top: &[u8], docs: &[&[u8]]) -> (Result<Walked>, Vec<Digest>) {
        let store: HashMap<Digest, Vec<u8>> =
            docs.iter().map(|d| (Digest::of(d), d.to_vec())).collect();
        let mut reads = Vec::new();
        let mut read = |d: &Digest, size: u64| -> Result<Option<Vec<u8>>> {
            reads.push(*d);
            let b = store
                .get(d)
                .cloned()
                .ok_or_else(|| anyhow!("{d}: absent"))?;
            assert_eq!(b.len() as u64, size);
            Ok(Some(b))
        };
        let r = walk((Digest::of(top), None, top.to_vec()), &mut read);
        (r, reads)
    }

    #[test]
    fn a_manifest_lists_its_config_and_layers_once() {
        let m = manifest(b"cfg", &[b"l1", b"l2", b"l1"]);
        let (w, reads) = run(&m, &[]);
        let w = w.unwrap();
        assert!(reads.is_empty());
        assert_eq!(
            w.manifests,
            vec![(Digest::of(&m), OCI_MANIFEST.into(), m.clone())]
        );
        let blobs: Vec<Digest> = w.blobs.iter().map(|b| b.0).collect();
        assert_eq!(blobs, [b"cfg" as &[u8], b"l1", b"l2"].map(Digest::of));
    }

    #[test]
    fn nested_indexes_put_children_first_and_read_each_once() {
        let a = manifest(b"cfg-a", &[b"shared", b"a"]);
        let b = manifest(b"cfg-b", &[b"shared"]);
        let inner = index(&[&a, &b]);
        // The same manifest listed twice, directly and through the inner index.
        let top = index(&[&inner, &a]);
        let (w, reads) = run(&top, &[&a, &b, &inner]);
        let w = w.unwrap();
        let order: Vec<Digest> = w.manifests.iter().map(|m| m.0).collect();
        assert_eq!(order, [&a, &b, &inner, &top].map(|x| Digest::of(x)));
        assert_eq!(w.manifests[2].1, OCI_INDEX);
        assert_eq!(reads.len(), 3, "each child read once");
        assert_eq!(w.blobs.len(), 4, "cfg-a, shared, a, cfg-b");
    }

    #[test]
    fn preorder_puts_each_parent_before_its_children() {
        let a = manifest(b"cfg-a", &[b"shared", b"a"]);
        let b = manifest(b"cfg-b", &[b"shared"]);
        let inner = index(&[&a, &b]);
        let top = index(&[&inner, &a]);
        let (w, _) = run(&top, &[&a, &b, &inner]);
        let w = w.unwrap();
        let want: [&[u8]; 8] = [&top, &inner, &a, b"cfg-a", b"shared", b"a", &b, b"cfg-b"];
        assert_eq!(w.preorder, want.map(Digest::of));
        assert_eq!(w.parsed.len(), 4);
        assert_eq!(
            w.describe(&Digest::of(&inner)),
            Some((inner.len() as u64, OCI_INDEX))
        );
        assert_eq!(
            w.describe(&Digest::of(b"shared")),
            Some((6, "application/vnd.oci.image.layer.v1.tar+gzip"))
        );
    }

    #[test]
    fn a_child_listed_again_with_another_size_is_refused() {
        let a = manifest(b"cfg-a", &[b"a"]);
        let good = index(&[&a]);
        let lying = String::from_utf8(good.clone())
            .unwrap()
            .replace(&format!("\"size\":{}", a.len()), "\"size\":1")
            .into_bytes();
        let top = index(&[&good, &lying]);
        let mut read = |d: &Digest, _: u64| -> Result<Option<Vec<u8>>> {
            Ok([&a, &good, &lying]
                .into_iter()
                .find(|x| Digest::of(x) == *d)
                .cloned())
        };
        let e = walk((Digest::of(&top), None, top.clone()), &mut read).unwrap_err();
        assert!(format!("{e:#}").contains("with size 1, but it is"), "{e:#}");
    }

    #[test]
    fn a_child_the_reader_skips_is_left_out() {
        let a = manifest(b"cfg-a", &[b"a"]);
        let gone = manifest(b"cfg-gone", &[b"gone"]);
        let top = index(&[&a, &gone]);
        let mut read = |d: &Digest, _: u64| -> Result<Option<Vec<u8>>> {
            Ok((*d == Digest::of(&a)).then(|| a.clone()))
        };
        let w = walk((Digest::of(&top), None, top.clone()), &mut read).unwrap();
        assert_eq!(w.manifests.len(), 2);
        assert_eq!(w.blobs.len(), 2);
    }

    #[test]
    fn depth_is_bounded_at_four() {
        let m = manifest(b"c", &[]);
        let mut levels = vec![m.clone()];
        for _ in 0..MAX_DEPTH {
            let next = index(&[levels.last().unwrap()]);
            levels.push(next);
        }
        // Four indexes above the manifest: allowed.
        let docs: Vec<&[u8]> = levels.iter().map(|l| l.as_slice()).collect();
        let (w, _) = run(levels.last().unwrap(), &docs);
        assert_eq!(w.unwrap().manifests.len(), MAX_DEPTH + 1);
        // Five: refused.
        let top = index(&[levels.last().unwrap()]);
        let (w, _) = run(&top, &docs);
        let e = format!("{:#}", w.unwrap_err());
        assert!(e.contains("nested deeper than 4"), "{e}");
    }

    #[test]
    fn media_types_come_from_the_descriptor_the_field_or_the_shape() {
        let (mt, node) = parse(br#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap();
        assert_eq!(mt, OCI_INDEX);
        assert!(matches!(node, Node::Index(_)));
        let m = manifest(b"c", &[]);
        let (mt, _) = parse(&m, Some(crate::media_types::DOCKER_MANIFEST)).unwrap();
        assert_eq!(mt, crate::media_types::DOCKER_MANIFEST);
        assert!(parse(b"<html>", None).is_err());
        assert!(parse(br#"{"schemaVersion":2,"mediaType":"x"}"#, None).is_err());
    }
}
