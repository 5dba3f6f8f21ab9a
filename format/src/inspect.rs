//! A summary of a bundle read from its head only (`inspect`), shared by both
//! programs so they print the same thing.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::bundle_json::{ChartEntry, FileEntry, ImageEntry, TemplateEntry};
use crate::digest::Digest;
use crate::display::escape as e;
use crate::limits::Limits;
use crate::reader::{ArchiveReader, ReadError};
use crate::signature::Signature;

/// What `inspect` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectReport {
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Creation time.
    pub created: String,
    /// Writer.
    pub generator: String,
    /// Digest of `bundle.json`.
    pub bundle_digest: Digest,
    /// Key id named by the signature (not verified by `inspect`).
    pub signer_key_id: Option<String>,
    /// Always false: `inspect` reads the head only; use `verify`.
    pub verified: bool,
    /// Images.
    pub images: Vec<ImageEntry>,
    /// Charts.
    pub charts: Vec<ChartEntry>,
    /// Files.
    pub files: Vec<FileEntry>,
    /// Configuration templates (format version 2).
    pub templates: Vec<TemplateEntry>,
    /// The licence the bundle carries (format version 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<crate::bundle_json::LicenseEntry>,
    /// For a delta bundle: its base (format version 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<crate::bundle_json::BaseEntry>,
    /// Blobs a delta leaves to its base, and their bytes.
    pub base_blobs: usize,
    /// Bytes of those blobs.
    pub base_bytes: u64,
    /// The media parts of a split bundle (format version 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::bundle_json::SplitEntry>,
    /// The bundle's format version.
    pub format_version: u32,
    /// Number of blobs.
    pub blob_count: usize,
    /// Sum of blob sizes.
    pub total_size: u64,
    /// Archive size on disk.
    pub archive_size: u64,
}

/// Reads the head of the archive at `path` and summarises it.
pub fn inspect(path: &Path) -> Result<InspectReport, ReadError> {
    let reader = ArchiveReader::open(path, Limits::default())?;
    let (head, d) = reader.read_descriptor_unverified()?;
    let signer_key_id = Signature::parse(&head.signature)
        .ok()
        .map(|s| s.key_id.to_string());
    Ok(InspectReport {
        bundle_digest: Digest::of(&head.bundle_json),
        name: d.name,
        version: d.version,
        description: d.description,
        created: d.created,
        generator: d.generator,
        signer_key_id,
        verified: false,
        blob_count: d.blobs.len(),
        images: d.images,
        charts: d.charts,
        files: d.files,
        templates: d.templates,
        license: d.license,
        base: d.base,
        base_blobs: d.base_blobs.len(),
        base_bytes: d.base_blobs.iter().map(|b| b.size).sum(),
        split: d.split,
        format_version: d.format_version,
        total_size: d.total_size,
        archive_size: reader.file_len(),
    })
}

/// Formats a byte count with binary units.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl InspectReport {
    /// What `inspect` prints: pretty JSON, or the text of [`Self::render_text`].
    pub fn to_output(&self, json: bool) -> String {
        if json {
            let mut s = serde_json::to_string_pretty(self).expect("the report serialises");
            s.push('\n');
            s
        } else {
            self.render_text()
        }
    }

    /// Human-readable text; every string from the bundle is escaped
    /// ([`crate::display`]), since `inspect` checks no signature.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "bundle:     {} {}", e(&self.name), e(&self.version));
        if !self.description.is_empty() {
            let _ = writeln!(s, "about:      {}", e(self.description.trim()));
        }
        let _ = writeln!(
            s,
            "created:    {} by {}",
            e(&self.created),
            e(&self.generator)
        );
        let _ = writeln!(s, "digest:     {}", self.bundle_digest);
        let _ = writeln!(
            s,
            "signed by:  {} (not verified here; run verify)",
            self.signer_key_id
                .as_deref()
                .unwrap_or("unreadable signature")
        );
        let _ = writeln!(
            s,
            "size:       {} in {} blobs ({} archive)",
            human_bytes(self.total_size),
            self.blob_count,
            human_bytes(self.archive_size)
        );
        let _ = writeln!(s, "images ({}):", self.images.len());
        for i in &self.images {
            let _ = writeln!(
                s,
                "  {:<40} {}  {:>10}  {}",
                e(&i.reference),
                i.digest,
                human_bytes(i.total_size),
                e(&i.platforms.join(","))
            );
        }
        let _ = writeln!(s, "charts ({}):", self.charts.len());
        for c in &self.charts {
            let _ = writeln!(
                s,
                "  {:<40} {}  {:>10}  app {}",
                e(&format!("{} {}", c.name, c.version)),
                c.digest,
                human_bytes(c.size),
                e(c.app_version.as_deref().unwrap_or("-"))
            );
        }
        let _ = writeln!(s, "files ({}):", self.files.len());
        for f in &self.files {
            let _ = writeln!(
                s,
                "  {:<40} {}  {:>10}  {}",
                e(&f.name),
                f.digest,
                human_bytes(f.size),
                f.kind.as_str()
            );
        }
        if !self.templates.is_empty() {
            let _ = writeln!(s, "templates ({}):", self.templates.len());
            for t in &self.templates {
                let _ = writeln!(
                    s,
                    "  {:<40} {}  {:>10}",
                    e(&t.name),
                    t.digest,
                    human_bytes(t.size)
                );
            }
        }
        if let Some(l) = &self.license {
            let _ = writeln!(
                s,
                "licence: {}  {:>10} (activated by airgap-install install)",
                l.digest,
                human_bytes(l.size)
            );
        }
        if let Some(b) = &self.base {
            let _ = writeln!(
                s,
                "delta of:   {} {} ({}): {} blobs ({}) left to it",
                e(&b.name),
                e(&b.version),
                b.digest,
                self.base_blobs,
                human_bytes(self.base_bytes)
            );
        }
        if let Some(split) = &self.split {
            let _ = writeln!(
                s,
                "parts ({}, {} each):",
                split.parts.len(),
                human_bytes(split.part_size)
            );
            for (i, p) in split.parts.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  part-{:03}  {}  {:>10}",
                    i + 1,
                    p.digest,
                    human_bytes(p.size)
                );
            }
        }
        s
    }
}
