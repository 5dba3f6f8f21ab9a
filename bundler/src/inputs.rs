//! The build's local inputs, for its default time: without
//! `SOURCE_DATE_EPOCH`, a bundle's `created` (and so its tar headers, its
//! packaged charts and their OCI artifacts) is the newest modification time
//! of the files the build reads, so the same inputs give the same bytes.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::manifest::Manifest;
use crate::sources::ImageSource;

/// Most files looked at in one input folder: a layout or chart folder
/// larger than this is refused rather than walked for ever.
const MAX_FILES: usize = 1_000_000;

/// The newest modification time, in seconds since the epoch, of the
/// manifest and every local file it names: image layouts and tarballs,
/// chart folders and packages, files, templates, the licence and vendor
/// SBOMs (folders walked whole, symbolic links not followed). Registry
/// sources add nothing: their content is named by digest. `None` when no
/// time could be read.
pub fn newest_mtime(manifest: &Manifest, manifest_path: &Path) -> Result<Option<u64>> {
    let mut newest = Newest::default();
    newest.path(manifest_path)?;
    let doc = &manifest.doc;
    for image in &doc.images {
        if let Ok(ImageSource::OciLayout { path, .. } | ImageSource::DockerArchive { path, .. }) =
            ImageSource::parse(&image.source.value)
        {
            newest.path(&manifest.resolve(&path))?;
        }
        for sbom in image.sboms.iter().flatten() {
            newest.path(&manifest.resolve(&sbom.source.value))?;
        }
    }
    for chart in &doc.charts {
        if let Ok(crate::chart_source::ChartSource::Local(path)) = chart.parsed() {
            newest.path(&manifest.resolve(&path))?;
        }
    }
    for file in &doc.files {
        newest.path(&manifest.resolve(&file.source.value))?;
    }
    for template in &doc.templates {
        newest.path(&manifest.resolve(&template.source.value))?;
    }
    if let Some(license) = &doc.license {
        newest.path(&manifest.resolve(&license.value))?;
    }
    Ok(newest.time)
}

#[derive(Default)]
struct Newest {
    time: Option<u64>,
    files: usize,
}

impl Newest {
    /// Takes `path`'s time, and every file's below it when it is a folder.
    /// A path that does not exist is left to the build to report.
    fn path(&mut self, path: &Path) -> Result<()> {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(());
        };
        self.files += 1;
        if self.files > MAX_FILES {
            anyhow::bail!(
                "{}: more than {MAX_FILES} files in the build's inputs; set SOURCE_DATE_EPOCH to give the build its time",
                path.display()
            );
        }
        if let Some(t) = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        {
            self.time = Some(self.time.unwrap_or(0).max(t.as_secs()));
        }
        if meta.is_dir() {
            let entries = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list", path.display()))?;
            for e in entries {
                let e = e.with_context(|| format!("{}: cannot list", path.display()))?;
                self.path(&e.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn set_mtime(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn the_newest_local_input_gives_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("chart/templates")).unwrap();
        std::fs::write(d.join("chart/Chart.yaml"), "name: c\nversion: 0.1.0\n").unwrap();
        std::fs::write(d.join("chart/templates/a.yaml"), "a: 1\n").unwrap();
        std::fs::write(d.join("notes.txt"), "n").unwrap();
        std::fs::write(d.join("unrelated.txt"), "u").unwrap();
        let m = d.join("m.yaml");
        std::fs::write(
            &m,
            "name: p\nversion: 1.0.0\ncharts:\n  - source: ./chart\nfiles:\n  - source: ./notes.txt\n",
        )
        .unwrap();
        for (p, t) in [
            ("m.yaml", 1_000),
            ("chart/Chart.yaml", 2_000),
            ("chart/templates/a.yaml", 3_000),
            ("notes.txt", 1_500),
            ("unrelated.txt", 9_000),
        ] {
            set_mtime(&d.join(p), t);
        }
        // Folders carry times of their own: set them too.
        for p in ["chart", "chart/templates"] {
            let f = std::fs::File::open(d.join(p)).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(500))
                .unwrap();
        }
        let manifest = Manifest::load(&m).unwrap();
        assert_eq!(newest_mtime(&manifest, &m).unwrap(), Some(3_000));
        set_mtime(&d.join("notes.txt"), 4_000);
        assert_eq!(newest_mtime(&manifest, &m).unwrap(), Some(4_000));
    }
}
