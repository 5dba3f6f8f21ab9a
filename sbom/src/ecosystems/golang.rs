//! Go binaries: the build information the Go toolchain embeds (the
//! `\xff Go buildinf:` header, in the `.go.buildinfo` section of ELF files,
//! `__go_buildinfo` of Mach-O, or found by scanning, as in PE files). Both
//! layouts are read: the inline strings of Go 1.18 and later, and the older
//! pointers to the version and module strings (followed through the
//! executable's sections or segments). The module information gives the
//! main module (`mod`), every dependency (`dep`), their replacements
//! (`=>`) and the build settings (`build`); each module becomes a package
//! `pkg:golang/MODULE@VERSION`. The main module, and only it, carries the
//! toolchain version and build settings.
//!
//! Not covered: binaries built without module support (no module
//! information: no packages), the standard library as a package, and
//! licenses (the build information has none). Bounds: at most 64 header
//! candidates tried, strings of at most 16 MiB.

use std::borrow::Cow;
use std::collections::BTreeMap;

use object::{Object, ObjectSection, ObjectSegment, ReadRef};

use crate::package::{normalize_location, props, Distro, Ecosystem, Package};
use crate::purl::PackageUrl;
use crate::source::Source;
use crate::ParseError;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_SIZE: usize = 32;
const MAX_CANDIDATES: usize = 64;
const MAX_STRING: u64 = 16 * 1024 * 1024;
const MAX_BUILD_SETTINGS: usize = 256;

/// Parses a Go binary's build information; a file without any is no package
/// (not an error). It warns about module lines it could not read. Build
/// information that is present but unreadable is an error.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    _distro: &Distro,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let file = object::File::parse(bytes).ok();
    parse_object(path, &bytes, file.as_ref(), warnings)
}

/// The Go toolchain version and module information of a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildInfo {
    pub version: String,
    pub modinfo: String,
}

/// [`parse_with_warnings`] on an executable already parsed by `object`
/// (`None` when it is not one `object` reads), its bytes read through `src`.
pub(crate) fn parse_object<'d, R: ReadRef<'d>>(
    path: &str,
    src: &dyn Source,
    file: Option<&object::File<'d, R>>,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    match find_build_info(src, file) {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(info)) => Ok(packages(path, &info, warnings)),
        Err(reason) => Err(ParseError::new(path, format!("Go build info: {reason}"))),
    }
}

/// How much of a region is searched for the header at a time.
const WINDOW: u64 = 1 << 20;

/// Looks for the build info header at 16-byte aligned places, in the
/// dedicated section first, then in the whole file. The file is searched a
/// window at a time, so a file on disk is never read whole into memory.
pub(crate) fn find_build_info<'d, R: ReadRef<'d>>(
    src: &dyn Source,
    file: Option<&object::File<'d, R>>,
) -> Result<Option<BuildInfo>, String> {
    // (offset, length) in the file.
    let mut regions: Vec<(u64, u64)> = Vec::new();
    if let Some(f) = file {
        for name in [".go.buildinfo", "__go_buildinfo"] {
            if let Some(range) = f.section_by_name(name).and_then(|s| s.file_range()) {
                regions.push(range);
            }
        }
    }
    regions.push((0, src.size()));
    let mut tried = 0;
    let mut last_error = None;
    'regions: for (start, len) in regions {
        let Some(end) = start.checked_add(len).filter(|&e| e <= src.size()) else {
            continue;
        };
        let mut at = 0;
        while at < len {
            // A window, and enough after it for a header that starts in it.
            let n = (WINDOW + MAGIC.len() as u64 - 1).min(len - at);
            let Some(chunk) = src.read_at(start + at, n as usize) else {
                continue 'regions;
            };
            for pos in memchr::memmem::find_iter(&chunk, MAGIC) {
                let pos = at + pos as u64;
                if pos >= at + WINDOW {
                    break; // the next window finds it
                }
                if !pos.is_multiple_of(16) {
                    continue;
                }
                tried += 1;
                if tried > MAX_CANDIDATES {
                    break 'regions;
                }
                match decode(src, start + pos, end, file) {
                    Ok(info) => return Ok(Some(info)),
                    Err(e) => last_error = Some(e),
                }
            }
            at += WINDOW;
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Reads a uvarint-length-prefixed string at `*at` (before `end`), moving
/// `*at` past it.
fn varint_string(src: &dyn Source, at: &mut u64, end: u64) -> Result<Vec<u8>, String> {
    let room = end.saturating_sub(*at).min(10) as usize;
    let head = src.read_at(*at, room).ok_or("truncated string length")?;
    let mut rest: &[u8] = &head;
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first().ok_or("truncated string length")?;
        rest = tail;
        if shift >= 63 && b > 1 {
            return Err("string length overflows".into());
        }
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    *at += (head.len() - rest.len()) as u64;
    if len > MAX_STRING || len > end - *at {
        return Err(format!("string of {len} bytes runs past the data"));
    }
    let s = src
        .read_at(*at, len as usize)
        .ok_or("string data cannot be read")?
        .into_owned();
    *at += len;
    Ok(s)
}

/// Decodes the header at `at` (which begins with the magic), within a
/// region that ends at `end`.
fn decode<'d, R: ReadRef<'d>>(
    src: &dyn Source,
    at: u64,
    end: u64,
    file: Option<&object::File<'d, R>>,
) -> Result<BuildInfo, String> {
    if end.saturating_sub(at) < HEADER_SIZE as u64 {
        return Err("header truncated".into());
    }
    let h = src.read_at(at, HEADER_SIZE).ok_or("header truncated")?;
    let ptr_size = h[14] as usize;
    let flags = h[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let mut rest = at + HEADER_SIZE as u64;
        let version = varint_string(src, &mut rest, end)?;
        let modinfo = varint_string(src, &mut rest, end)?;
        (version, modinfo)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("pointer size {ptr_size} is neither 4 nor 8"));
        }
        let file = file.ok_or("pointer-format build info outside a readable executable")?;
        let big_endian = flags & 1 != 0;
        let version_at = read_ptr(&h[16..16 + ptr_size], big_endian);
        let modinfo_at = read_ptr(&h[16 + ptr_size..16 + 2 * ptr_size], big_endian);
        let version = read_go_string(file, src, version_at, ptr_size, big_endian)?;
        let modinfo = read_go_string(file, src, modinfo_at, ptr_size, big_endian)?;
        (version, modinfo)
    };
    if version.is_empty()
        || version.len() > 256
        || !version.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
    {
        return Err("no plausible Go version string".into());
    }
    Ok(BuildInfo {
        version: String::from_utf8_lossy(&version).into_owned(),
        modinfo: String::from_utf8_lossy(strip_sentinels(&modinfo)).into_owned(),
    })
}

fn read_ptr(b: &[u8], big_endian: bool) -> u64 {
    let mut v = 0u64;
    if big_endian {
        for &x in b {
            v = (v << 8) | u64::from(x);
        }
    } else {
        for &x in b.iter().rev() {
            v = (v << 8) | u64::from(x);
        }
    }
    v
}

/// `len` bytes at virtual address `addr`, found through the sections that
/// have file data, else the segments, and read from `src` (only those
/// bytes).
fn read_at<'d, R: ReadRef<'d>>(
    file: &object::File<'d, R>,
    src: &dyn Source,
    addr: u64,
    len: u64,
) -> Option<Vec<u8>> {
    let pick = |start: u64, range: Option<(u64, u64)>| -> Option<Vec<u8>> {
        let (offset, size) = range?;
        let off = addr.checked_sub(start)?;
        if off >= size || off.checked_add(len)? > size {
            return None;
        }
        src.read_at(offset.checked_add(off)?, usize::try_from(len).ok()?)
            .map(Cow::into_owned)
    };
    file.sections()
        .find_map(|s| pick(s.address(), s.file_range()))
        .or_else(|| {
            file.segments()
                .find_map(|s| pick(s.address(), Some(s.file_range())))
        })
}

/// A Go string header (data pointer, length) at `addr`, and its bytes.
fn read_go_string<'d, R: ReadRef<'d>>(
    file: &object::File<'d, R>,
    src: &dyn Source,
    addr: u64,
    ptr_size: usize,
    big_endian: bool,
) -> Result<Vec<u8>, String> {
    let hdr = read_at(file, src, addr, 2 * ptr_size as u64)
        .ok_or_else(|| format!("string header at {addr:#x} is not in the file"))?;
    let data_at = read_ptr(&hdr[..ptr_size], big_endian);
    let len = read_ptr(&hdr[ptr_size..], big_endian);
    if len > MAX_STRING {
        return Err(format!("string of {len} bytes at {data_at:#x} is too long"));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    read_at(file, src, data_at, len)
        .ok_or_else(|| format!("string data at {data_at:#x} is not in the file"))
}

/// The module information between its 16-byte framing sentinels; empty
/// when it is not framed as the toolchain frames it.
fn strip_sentinels(m: &[u8]) -> &[u8] {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        &m[16..m.len() - 16]
    } else {
        &[]
    }
}

/// One `mod` or `dep` line and its replacement.
#[derive(Debug, Default)]
struct Module {
    path: String,
    version: String,
    sum: String,
    replace: Option<(String, String, String)>,
    main: bool,
}

/// Undoes Go's `strconv.Quote` for the build setting values that need it.
fn unquote(v: &str) -> Cow<'_, str> {
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return Cow::Borrowed(v);
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn packages(path: &str, info: &BuildInfo, warnings: &mut Vec<ParseError>) -> Vec<Package> {
    let mut modules: Vec<Module> = Vec::new();
    let mut build = BTreeMap::new();
    for (n, line) in info.modinfo.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["path", ..] | [""] => {}
            [word @ ("mod" | "dep"), p, rest @ ..] if !p.is_empty() => modules.push(Module {
                path: p.to_string(),
                version: rest.first().unwrap_or(&"").to_string(),
                sum: rest.get(1).unwrap_or(&"").to_string(),
                replace: None,
                main: *word == "mod",
            }),
            ["=>", p, rest @ ..] if !p.is_empty() => match modules.last_mut() {
                Some(m) if m.replace.is_none() => {
                    m.replace = Some((
                        p.to_string(),
                        rest.first().unwrap_or(&"").to_string(),
                        rest.get(1).unwrap_or(&"").to_string(),
                    ))
                }
                _ => warnings.push(ParseError::new(
                    path,
                    format!(
                        "Go module info line {}: replacement without a module",
                        n + 1
                    ),
                )),
            },
            ["build", setting] => {
                if build.len() < MAX_BUILD_SETTINGS {
                    if let Some((k, v)) = setting.split_once('=') {
                        build.insert(unquote(k).into_owned(), unquote(v).into_owned());
                    }
                }
            }
            _ => warnings.push(ParseError::new(
                path,
                format!("Go module info line {}: not understood", n + 1),
            )),
        }
    }
    let location = normalize_location(path);
    modules
        .into_iter()
        .map(|m| {
            let mut properties = BTreeMap::new();
            let (name, version, sum) = match &m.replace {
                Some((rp, rv, rs)) if !is_local_replacement(rp, rv) => {
                    properties.insert(
                        props::GO_REPLACES.to_string(),
                        format!("{}@{}", m.path, m.version),
                    );
                    (rp.clone(), rv.clone(), rs.clone())
                }
                Some((dir, _, _)) => {
                    properties.insert(props::GO_REPLACED_BY_DIR.to_string(), dir.clone());
                    (m.path.clone(), m.version.clone(), String::new())
                }
                None => (m.path.clone(), m.version.clone(), m.sum.clone()),
            };
            if !sum.is_empty() {
                properties.insert(props::GO_SUM.to_string(), sum);
            }
            if m.main {
                properties.insert(props::GO_MAIN.to_string(), "true".to_string());
                properties.insert(props::GO_TOOLCHAIN.to_string(), info.version.clone());
                for (k, v) in &build {
                    properties.insert(format!("{}{k}", props::GO_BUILD_PREFIX), v.clone());
                }
            }
            Package {
                ecosystem: Ecosystem::Golang,
                purl: module_purl(&name, &version),
                name,
                version,
                licenses: Vec::new(),
                location: location.clone(),
                properties,
            }
        })
        .collect()
}

/// A replacement by a directory (`=> ./greeting`, with no version, or
/// `(devel)` from newer toolchains) rather than by another module: module
/// paths never start with `.` or `/`.
fn is_local_replacement(path: &str, version: &str) -> bool {
    version.is_empty()
        || version == "(devel)"
        || path.starts_with('.')
        || path.starts_with('/')
        || path.as_bytes().get(1) == Some(&b':')
}

/// `pkg:golang/NAMESPACE/NAME@VERSION`, lowercased as the golang purl type
/// asks; `(devel)` (a build outside version control) is no version.
pub(crate) fn module_purl(module: &str, version: &str) -> String {
    let lower = module.to_lowercase();
    let p = match lower.rsplit_once('/') {
        Some((ns, name)) => PackageUrl::new("golang", name).with_namespace(ns),
        None => PackageUrl::new("golang", &lower),
    };
    let version = if version == "(devel)" { "" } else { version };
    p.with_version(version).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ecosystems::fuzz;
    use crate::testelf::{elf, Section};

    const SENTINEL_START: &[u8] =
        b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const SENTINEL_END: &[u8] = b"\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";

    pub(crate) const MODINFO: &str = "path\tgithub.com/example/Hello\nmod\tgithub.com/example/Hello\t(devel)\t\ndep\tgithub.com/BurntSushi/toml\tv1.3.2\th1:o7IhLm0Msx3BaB+n3Ag7L8EVlByGKtmBAUX8T6Xx4Vs=\ndep\tgolang.org/x/sys\tv0.10.0\th1:SqMFp9UcQJZa+pmYuAKjd9xq1f0j5rLcDIk0mj4qAsA=\n=>\tgolang.org/x/sys\tv0.12.0\th1:CM0HF96J0hcLAwsHPJZjfdNzs0gftsLfgKt57wWHJ0o=\ndep\texample.com/local\tv0.0.0-00010101000000-000000000000\n=>\t./local\t\t\ndep\tgopkg.in/yaml.v3\tv3.0.1+incompatible\th1:x\nbuild\t-buildmode=exe\nbuild\t-compiler=gc\nbuild\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\nbuild\tvcs=git\nbuild\tvcs.revision=0123456789abcdef\n";

    fn framed(modinfo: &str) -> Vec<u8> {
        let mut m = SENTINEL_START.to_vec();
        m.extend(modinfo.as_bytes());
        m.extend(SENTINEL_END);
        m
    }

    fn uvarint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A Go 1.18+ `.go.buildinfo` section: header with inline strings.
    pub(crate) fn inline_blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(2);
        b.resize(HEADER_SIZE, 0);
        uvarint(version.len(), &mut b);
        b.extend(version.as_bytes());
        let m = framed(modinfo);
        uvarint(m.len(), &mut b);
        b.extend(&m);
        b
    }

    fn check_hello(pkgs: &[Package], toolchain: &str) {
        let purls: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/github.com/example/hello",
                "pkg:golang/github.com/burntsushi/toml@v1.3.2",
                "pkg:golang/golang.org/x/sys@v0.12.0",
                "pkg:golang/example.com/local@v0.0.0-00010101000000-000000000000",
                "pkg:golang/gopkg.in/yaml.v3@v3.0.1%2Bincompatible",
            ]
        );
        let main = &pkgs[0];
        assert_eq!(main.name, "github.com/example/Hello");
        assert_eq!(main.version, "(devel)");
        assert_eq!(main.properties[props::GO_MAIN], "true");
        assert_eq!(main.properties[props::GO_TOOLCHAIN], toolchain);
        assert_eq!(main.properties["go_build:GOOS"], "linux");
        assert_eq!(main.properties["go_build:-ldflags"], "-s -w");
        assert_eq!(main.properties["go_build:vcs.revision"], "0123456789abcdef");
        assert_eq!(pkgs[1].name, "github.com/BurntSushi/toml");
        assert_eq!(
            pkgs[1].properties[props::GO_SUM],
            "h1:o7IhLm0Msx3BaB+n3Ag7L8EVlByGKtmBAUX8T6Xx4Vs="
        );
        assert!(!pkgs[1].properties.contains_key(props::GO_MAIN));
        assert_eq!(pkgs[2].version, "v0.12.0");
        assert_eq!(
            pkgs[2].properties[props::GO_REPLACES],
            "golang.org/x/sys@v0.10.0"
        );
        assert_eq!(pkgs[3].properties[props::GO_REPLACED_BY_DIR], "./local");
        assert!(pkgs
            .iter()
            .all(|p| p.licenses.is_empty() && p.ecosystem == Ecosystem::Golang));
    }

    #[test]
    fn inline_format_in_an_elf_section() {
        let blob = inline_blob("go1.22.1", MODINFO);
        let file = elf(&[
            Section::new(".text", 0x401000, &[0x90; 64]),
            Section::new(".go.buildinfo", 0x500000, &blob),
        ]);
        let mut warnings = Vec::new();
        let pkgs = parse_with_warnings(
            "usr/local/bin/hello",
            &file,
            &Distro::default(),
            &mut warnings,
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        check_hello(&pkgs, "go1.22.1");
        assert_eq!(pkgs[0].location, "/usr/local/bin/hello");
    }

    #[test]
    fn inline_format_found_by_scanning() {
        // No executable structure at all: the header is found by scanning.
        let mut bytes = vec![0u8; 64];
        bytes.extend(inline_blob("go1.21.0", MODINFO));
        bytes.extend([0u8; 7]);
        let pkgs =
            crate::ecosystems::packages(parse_with_warnings, "x", &bytes, &Distro::default())
                .unwrap();
        check_hello(&pkgs, "go1.21.0");
        // Not aligned: not a header.
        let mut bytes = vec![0u8; 3];
        bytes.extend(inline_blob("go1.21.0", MODINFO));
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "x", &bytes, &Distro::default())
                .unwrap()
                .is_empty()
        );
    }

    /// What [`parse_with_warnings`] finds in `bytes` written to a file, read as
    /// [`crate::ecosystems::binary::parse_file`] reads it.
    fn parse_from_file(bytes: &[u8]) -> Result<Vec<Package>, ParseError> {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let cache = object::ReadCache::new(&file);
        let parsed = object::File::parse(&cache).ok();
        let src = crate::source::FileSource::new(&file, bytes.len() as u64);
        parse_object("x", &src, parsed.as_ref(), &mut Vec::new())
    }

    #[test]
    fn scanning_a_file_finds_headers_across_window_boundaries() {
        let window = WINDOW as usize;
        for at in [0, window - 16, window, 3 * window + 16] {
            let mut bytes = vec![0u8; at];
            bytes.extend(inline_blob("go1.21.0", MODINFO));
            bytes.extend([0u8; 7]);
            let in_memory =
                crate::ecosystems::packages(parse_with_warnings, "x", &bytes, &Distro::default())
                    .unwrap();
            check_hello(&in_memory, "go1.21.0");
            assert_eq!(
                parse_from_file(&bytes).unwrap(),
                in_memory,
                "header at {at}"
            );
        }
        // A header whose strings run past the end: the same error both ways.
        let mut bytes = vec![0u8; window - 16];
        let blob = inline_blob("go1.21.0", MODINFO);
        bytes.extend(&blob[..HEADER_SIZE + 4]);
        let in_memory =
            crate::ecosystems::packages(parse_with_warnings, "x", &bytes, &Distro::default())
                .unwrap_err();
        assert!(
            in_memory.to_string().contains("runs past the data"),
            "{in_memory}"
        );
        assert_eq!(parse_from_file(&bytes).unwrap_err(), in_memory);
    }

    /// The pre-1.18 layout: the header holds pointers to Go string
    /// headers, which point to the data, all in other sections.
    fn pointer_format_elf(big_endian_flag: bool) -> Vec<u8> {
        let version = b"go1.16.15";
        let modinfo = framed(MODINFO);
        // .rodata at 0x600000: version bytes, then modinfo bytes.
        let mut rodata = version.to_vec();
        let modinfo_addr = 0x600000 + rodata.len() as u64;
        rodata.extend(&modinfo);
        // .data at 0x700000: two string headers (ptr, len).
        let put = |v: u64, out: &mut Vec<u8>| {
            if big_endian_flag {
                out.extend(v.to_be_bytes())
            } else {
                out.extend(v.to_le_bytes())
            }
        };
        let mut data = Vec::new();
        put(0x600000, &mut data);
        put(version.len() as u64, &mut data);
        put(modinfo_addr, &mut data);
        put(modinfo.len() as u64, &mut data);
        let mut hdr = MAGIC.to_vec();
        hdr.push(8);
        hdr.push(if big_endian_flag { 1 } else { 0 });
        put(0x700000, &mut hdr);
        put(0x700010, &mut hdr);
        hdr.resize(HEADER_SIZE, 0);
        elf(&[
            Section::new(".rodata", 0x600000, &rodata),
            Section::new(".data", 0x700000, &data),
            Section::new(".go.buildinfo", 0x710000, &hdr),
        ])
    }

    #[test]
    fn pointer_format() {
        for big in [false, true] {
            let file = pointer_format_elf(big);
            let pkgs =
                crate::ecosystems::packages(parse_with_warnings, "old", &file, &Distro::default())
                    .unwrap();
            let mut from_file = parse_from_file(&file).unwrap();
            for p in &mut from_file {
                p.location = pkgs[0].location.clone();
            }
            assert_eq!(from_file, pkgs);
            check_hello(&pkgs, "go1.16.15");
        }
    }

    #[test]
    fn unreadable_build_info_is_an_error() {
        let mut blob = inline_blob("go1.22.1", MODINFO);
        blob.truncate(40);
        let e =
            crate::ecosystems::packages(parse_with_warnings, "bin/x", &blob, &Distro::default())
                .unwrap_err();
        assert!(e.reason.starts_with("Go build info"), "{e}");
        // Pointers that lead nowhere.
        let mut hdr = MAGIC.to_vec();
        hdr.extend([8, 0]);
        hdr.extend(0xdead_0000u64.to_le_bytes());
        hdr.extend(0xdead_0010u64.to_le_bytes());
        let file = elf(&[Section::new(".go.buildinfo", 0x1000, &hdr)]);
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "bin/x",
            &file,
            &Distro::default()
        )
        .is_err());
        // Not a Go binary at all.
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "bin/x",
            b"\x7fELF",
            &Distro::default()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn modinfo_without_framing_gives_no_modules() {
        let mut b = MAGIC.to_vec();
        b.extend([8, 2]);
        b.resize(HEADER_SIZE, 0);
        uvarint(8, &mut b);
        b.extend(b"go1.22.1");
        uvarint(5, &mut b);
        b.extend(b"hello");
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "x", &b, &Distro::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn real_go_binary() {
        let Some(dir) = crate::testtools::go_hello() else {
            eprintln!("SKIPPED real_go_binary: no Go toolchain (apt-get install golang-go)");
            return;
        };
        let bin = std::fs::read(dir.path().join("hello")).unwrap();
        let mut warnings = Vec::new();
        let pkgs =
            parse_with_warnings("usr/bin/hello", &bin, &Distro::default(), &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let purls: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/example.com/hello",
                "pkg:golang/example.com/greeting@v1.2.3"
            ],
            "{pkgs:#?}"
        );
        assert_eq!(pkgs[1].properties[props::GO_REPLACED_BY_DIR], "./greeting");
        assert!(pkgs[0].properties[props::GO_TOOLCHAIN].starts_with("go1."));
        assert_eq!(pkgs[0].properties["go_build:GOOS"], "linux");
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let d = Distro::default();
        let blob = inline_blob("go1.22.1", MODINFO);
        fuzz::mutations(&blob, 300, |b| {
            let _ = crate::ecosystems::packages(parse_with_warnings, "x", b, &d);
        });
        let file = elf(&[Section::new(".go.buildinfo", 0x500000, &blob)]);
        fuzz::mutations(&file, 300, |b| {
            let _ = crate::ecosystems::packages(parse_with_warnings, "x", b, &d);
        });
        let old = pointer_format_elf(false);
        fuzz::mutations(&old, 400, |b| {
            let _ = crate::ecosystems::packages(parse_with_warnings, "x", b, &d);
        });
    }
}
