//! An index of an uncompressed tarball's entries (path → data offset and
//! size, or link target), so entries can be read in place without unpacking.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use airgap_format::display::escape;
use anyhow::{anyhow, bail, Context, Result};

/// Most entries indexed.
const MAX_ENTRIES: usize = 1 << 20;
/// Most symbolic links followed when resolving one path.
const MAX_LINKS: usize = 16;

/// One indexed entry.
#[derive(Clone, Debug)]
pub enum TarItem {
    /// A regular file's data position.
    File {
        /// Offset of the data in the tarball.
        offset: u64,
        /// Size of the data.
        size: u64,
    },
    /// A symbolic or hard link, with its target.
    Link(String),
    /// A directory or another type.
    Other,
}

/// The index of a tarball.
pub struct TarIndex {
    path: PathBuf,
    items: HashMap<String, TarItem>,
}

/// Normalises an in-archive path: strips `./`, resolves `..` within the
/// archive; `None` when it would leave the archive root.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl TarIndex {
    /// Reads every header of the tarball at `path` (data is skipped, not read).
    pub fn build(path: &Path) -> Result<TarIndex> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        let mut items = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .with_context(|| format!("{}: not a tar archive", path.display()))?;
        for entry in entries {
            // The tar crate's message quotes the entry's raw name.
            let entry = entry.map_err(|e| {
                anyhow!(
                    "{}: corrupt tar archive: {}",
                    path.display(),
                    escape(&e.to_string())
                )
            })?;
            if items.len() >= MAX_ENTRIES {
                bail!("{}: more than {MAX_ENTRIES} entries", path.display());
            }
            let raw = entry.path_bytes();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let Some(key) = normalize(&name) else {
                bail!(
                    "{}: entry {name:?} points outside the archive",
                    path.display()
                );
            };
            let item = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => TarItem::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    // Relative to the link's folder.
                    let base = key.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    TarItem::Link(format!("{base}/{target}"))
                }
                tar::EntryType::Link => TarItem::Link(
                    entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                ),
                _ => TarItem::Other,
            };
            items.insert(key, item);
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            items,
        })
    }

    /// The tarball's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when a path exists (as any type).
    pub fn contains(&self, name: &str) -> bool {
        normalize(name).is_some_and(|k| self.items.contains_key(&k))
    }

    /// Resolves `name`, following links, to a regular file's (offset, size).
    pub fn file(&self, name: &str) -> Result<(u64, u64)> {
        let mut key = normalize(name).with_context(|| {
            format!(
                "{}: {name:?} points outside the archive",
                self.path.display()
            )
        })?;
        for _ in 0..MAX_LINKS {
            match self.items.get(&key) {
                Some(TarItem::File { offset, size }) => return Ok((*offset, *size)),
                Some(TarItem::Link(target)) => {
                    key = normalize(target).with_context(|| {
                        format!(
                            "{}: link {key:?} points outside the archive",
                            self.path.display()
                        )
                    })?;
                }
                Some(TarItem::Other) => {
                    bail!(
                        "{}: {} is not a regular file",
                        self.path.display(),
                        escape(&key)
                    )
                }
                None => bail!("{}: no entry {}", self.path.display(), escape(&key)),
            }
        }
        bail!(
            "{}: too many links resolving {}",
            self.path.display(),
            escape(name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("./a/b").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/../blobs/x").as_deref(), Some("blobs/x"));
        assert_eq!(normalize("../x"), None);
    }
}
