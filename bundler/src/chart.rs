//! Helm charts: a chart directory is packaged deterministically into a
//! `.tgz` (sorted entries, fixed times, owners and modes, `.helmignore`
//! honoured); a `.tgz` is read only far enough to find its `Chart.yaml`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Largest `Chart.yaml` read.
const MAX_CHART_YAML: u64 = 1 << 20;
/// Most bytes decompressed while looking for `Chart.yaml` in a `.tgz`.
const MAX_SCAN: u64 = 256 << 20;

/// The `Chart.yaml` fields the bundle records.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    /// Chart name.
    pub name: String,
    /// Chart version (semantic).
    pub version: String,
    /// Application version.
    #[serde(default)]
    pub app_version: Option<String>,
    /// The whole of `Chart.yaml` as JSON: the config blob Helm stores
    /// beside a chart pushed to an OCI registry.
    #[serde(skip)]
    pub metadata: serde_json::Value,
}

fn parse_chart_yaml(text: &str, what: &str) -> Result<ChartMeta> {
    // Chart.yaml has many fields the bundle does not need: they are ignored.
    let meta: ChartMeta = serde_saphyr::from_str(text).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.without_snippet().to_string().replace('\n', "; ");
        anyhow::anyhow!("{what}{loc}: {msg}")
    })?;
    check_meta(&meta, what)?;
    let mut meta = meta;
    meta.metadata = serde_saphyr::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{what}: {}",
            e.without_snippet().to_string().replace('\n', "; ")
        )
    })?;
    Ok(meta)
}

/// The bundle format's rules for what `Chart.yaml` says (docs/format.md
/// §5.1): Helm's naming convention for the name, a semantic version of at
/// most 128 bytes, an `appVersion` that is plain text. `what` names the file.
fn check_meta(meta: &ChartMeta, what: &str) -> Result<()> {
    use airgap_format::display::quote;
    use airgap_format::fields;
    if !fields::is_valid_chart_name(&meta.name) {
        bail!(
            "{what}: chart name {} is not valid: expected {} (Helm's naming convention); rename the chart",
            quote(&meta.name),
            fields::CHART_NAME_RULE
        );
    }
    if let Err(e) = fields::parse_version(&meta.version) {
        bail!(
            "{what}: version {} is not valid ({e}): expected {}; set version: in Chart.yaml",
            quote(&meta.version),
            fields::VERSION_RULE
        );
    }
    if let Some(app) = meta
        .app_version
        .as_deref()
        .filter(|a| !fields::is_valid_app_version(a))
    {
        bail!(
            "{what}: appVersion {} is not valid: expected {}; set appVersion: in Chart.yaml",
            quote(app),
            fields::APP_VERSION_RULE
        );
    }
    Ok(())
}

/// Packages the chart directory `dir` into `out` (a new file); returns its metadata.
pub fn package_dir(dir: &Path, out: &Path, mtime: u64) -> Result<ChartMeta> {
    let chart_yaml = dir.join("Chart.yaml");
    let text = read_bounded(&chart_yaml)?;
    let meta = parse_chart_yaml(&text, &chart_yaml.display().to_string())?;

    let mut ignore = ignore::gitignore::GitignoreBuilder::new(dir);
    let helmignore = dir.join(".helmignore");
    if helmignore.is_file() {
        if let Some(e) = ignore.add(&helmignore) {
            bail!("{}: {e}", helmignore.display());
        }
    }
    let ignore = ignore
        .build()
        .with_context(|| format!("{}: invalid patterns", helmignore.display()))?;

    let mut files = Vec::new();
    collect(dir, dir, &ignore, &mut files)?;
    files.sort();

    let file =
        std::fs::File::create(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let gz = flate2::GzBuilder::new().mtime(0).write(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for rel in &files {
        let src = dir.join(rel);
        let f = airgap_format::regular_file::open_regular(&src)
            .with_context(|| format!("{}: cannot open", src.display()))?;
        let len = f.metadata()?.len();
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        let name = format!("{}/{}", meta.name, rel);
        tar.append_data(&mut h, &name, f.take(len))
            .with_context(|| format!("{}: cannot package", src.display()))?;
    }
    let gz = tar.into_inner().context("finishing chart archive")?;
    let mut w = gz.finish().context("finishing chart archive")?;
    w.flush()?;
    Ok(meta)
}

fn collect(
    root: &Path,
    dir: &Path,
    ignore: &ignore::gitignore::Gitignore,
    out: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ft = e.file_type()?;
        let rel = path.strip_prefix(root).expect("below root");
        let rel_str = rel
            .to_str()
            .with_context(|| format!("{}: file name is not UTF-8", path.display()))?
            .to_string();
        if ignore
            .matched_path_or_any_parents(rel, ft.is_dir())
            .is_ignore()
        {
            continue;
        }
        if ft.is_symlink() {
            bail!(
                "{}: symbolic links are not packaged into charts",
                path.display()
            );
        } else if ft.is_dir() {
            collect(root, &path, ignore, out)?;
        } else if ft.is_file() {
            out.push(rel_str);
        } else {
            bail!("{}: not a regular file", path.display());
        }
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<String> {
    let f = airgap_format::regular_file::open_regular(path)
        .with_context(|| format!("{}: cannot open (is this a chart?)", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_CHART_YAML + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_CHART_YAML {
        bail!("{}: larger than {MAX_CHART_YAML} bytes", path.display());
    }
    String::from_utf8(buf).with_context(|| format!("{}: not UTF-8", path.display()))
}

/// Reads `Chart.yaml` from a packaged chart without unpacking it.
pub fn inspect_tgz(path: &Path) -> Result<ChartMeta> {
    let what = path.display().to_string();
    let f = airgap_format::regular_file::open_regular(path)
        .with_context(|| format!("{what}: cannot open"))?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
    let mut archive = tar::Archive::new(gz.take(MAX_SCAN));
    for entry in archive
        .entries()
        .with_context(|| format!("{what}: not a gzip tar archive"))?
    {
        let mut entry = entry.with_context(|| format!("{what}: corrupt chart archive"))?;
        let p = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let parts: Vec<&str> = p.trim_start_matches("./").split('/').collect();
        if parts.len() == 2 && parts[1] == "Chart.yaml" && entry.header().entry_type().is_file() {
            if entry.size() > MAX_CHART_YAML {
                bail!("{what}: {p} is larger than {MAX_CHART_YAML} bytes");
            }
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .with_context(|| format!("{what}: {p} is not UTF-8"))?;
            let meta = parse_chart_yaml(&text, &format!("{what}: {p}"))?;
            if parts[0] != meta.name {
                bail!(
                    "{what}: chart {} is packaged under folder {}",
                    meta.name,
                    parts[0]
                );
            }
            return Ok(meta);
        }
    }
    bail!("{what}: no <chart>/Chart.yaml found; not a Helm chart archive")
}

/// A chart source ready to be stored.
pub struct PreparedChart {
    /// Metadata from `Chart.yaml`.
    pub meta: ChartMeta,
    /// The `.tgz` to store.
    pub tgz: PathBuf,
}

/// Prepares a chart from a directory (packaged into `work_dir`) or a `.tgz`.
pub fn prepare(source: &Path, work_dir: &Path, index: usize, mtime: u64) -> Result<PreparedChart> {
    if source.is_dir() {
        let out = work_dir.join(format!("chart-{index}.tgz"));
        let meta = package_dir(source, &out, mtime)?;
        Ok(PreparedChart { meta, tgz: out })
    } else if source.is_file() {
        let meta = inspect_tgz(source)?;
        Ok(PreparedChart {
            meta,
            tgz: source.to_path_buf(),
        })
    } else {
        bail!("{}: chart not found", source.display())
    }
}
