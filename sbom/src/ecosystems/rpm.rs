//! RPM packages from an SQLite rpm database (`var/lib/rpm/rpmdb.sqlite`,
//! or `usr/lib/sysimage/rpm/rpmdb.sqlite` on Fedora 36 and later, rpm
//! 4.16+). The `Packages` table holds one header blob per package; this
//! module reads them with SQLite (compiled in, opened from memory, read
//! only, with a bound on the work it may do) and parses the header format
//! itself, with a bounds check on every read: NAME, VERSION, RELEASE,
//! EPOCH, ARCH, LICENSE, SOURCERPM and VENDOR.
//!
//! Not covered: the Berkeley DB (`Packages`) and NDB (`Packages.db`)
//! databases of older and SUSE systems, and changes still sitting in a
//! `rpmdb.sqlite-wal` file (rpm checkpoints on exit, so images rarely have
//! any). `gpg-pubkey` entries, which are imported keys rather than
//! packages, are skipped.

use std::collections::BTreeMap;
use std::io::Read;

use rusqlite::{Connection, OpenFlags};

use crate::package::{normalize_location, os_package_purl, props, Distro, Ecosystem, Package};
use crate::ParseError;

/// Largest database read.
const MAX_DB_SIZE: usize = 1024 * 1024 * 1024;
/// Largest string or blob SQLite may return (a header is far smaller).
const MAX_BLOB: i32 = 64 * 1024 * 1024;
/// Rows read from `Packages`.
const MAX_ROWS: usize = 1_000_000;
/// SQLite virtual machine instructions allowed, in units of
/// [`PROGRESS_STEP`]: 10^8, about a second, where reading a real database
/// takes well under 10^6; a hostile schema (a recursive view named
/// `Packages`) cannot make the query run for ever.
const MAX_PROGRESS_CALLS: u64 = 10_000;
const PROGRESS_STEP: i32 = 10_000;
/// rpm's own limits on a header: index entries and data store size.
const MAX_INDEX_ENTRIES: u32 = 0xffff;
const MAX_DATA_SIZE: u32 = 0x0fff_ffff;
/// Longest string read from a header.
const MAX_STRING: usize = 1024 * 1024;

/// Parses an rpmdb.sqlite database; header blobs that cannot be read are
/// skipped. It adds a warning for each header it had to skip. A file that is
/// not an SQLite database with a `Packages` table is an error; so is a
/// database SQLite finds corrupt before any package was read.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    distro: &Distro,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let err = |reason: String| ParseError::new(path, reason);
    if !bytes.starts_with(b"SQLite format 3\0") || bytes.len() < 100 {
        return Err(err("not an SQLite database".into()));
    }
    if bytes.len() > MAX_DB_SIZE {
        return Err(err(format!("database larger than {MAX_DB_SIZE} bytes")));
    }
    let conn = open(bytes).map_err(|e| err(format!("cannot open the database: {e}")))?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .map_err(|e| err(format!("no readable Packages table: {e}")))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| err(format!("cannot read the Packages table: {e}")))?;
    let location = normalize_location(path);
    let mut out = Vec::new();
    let mut seen = 0usize;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) if out.is_empty() && seen == 0 => {
                return Err(err(format!("cannot read the Packages table: {e}")))
            }
            Err(e) => {
                warnings.push(err(format!("reading stopped after {seen} rows: {e}")));
                break;
            }
        };
        seen += 1;
        if seen > MAX_ROWS {
            warnings.push(err(format!(
                "more than {MAX_ROWS} rows, the rest were skipped"
            )));
            break;
        }
        let hnum: i64 = row.get(0).unwrap_or(-1);
        let blob = match row.get_ref(1) {
            Ok(rusqlite::types::ValueRef::Blob(b)) => b,
            _ => {
                warnings.push(err(format!("header {hnum}: not a blob")));
                continue;
            }
        };
        match Header::parse(blob).and_then(|h| package(&h, distro, &location)) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => {}
            Err(reason) => warnings.push(err(format!("header {hnum}: {reason}"))),
        }
    }
    Ok(out)
}

/// An in-memory, read-only copy of the database with SQLite's defences on.
fn open(bytes: &[u8]) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
        false,
    )?;
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, MAX_BLOB)?;
    // SQLite's in-memory databases cannot be in WAL mode: a database left
    // in WAL mode (bytes 18 and 19 are 2) is read as a rollback-journal
    // one, which it is once checkpointed.
    let (first, rest) = bytes.split_at_checked(100).ok_or_else(|| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            Some("shorter than an SQLite header".into()),
        )
    })?;
    let mut header = [0u8; 100];
    header.copy_from_slice(first);
    if header[18] == 2 && header[19] == 2 {
        header[18] = 1;
        header[19] = 1;
    }
    let reader = (&header[..]).chain(rest);
    conn.deserialize_read_exact(rusqlite::MAIN_DB, reader, bytes.len(), true)?;
    let mut calls = 0u64;
    conn.progress_handler(
        PROGRESS_STEP,
        Some(move || {
            calls += 1;
            calls > MAX_PROGRESS_CALLS
        }),
    )?;
    Ok(conn)
}

/// rpm header tags this parser reads.
pub(crate) mod tag {
    pub const NAME: i32 = 1000;
    pub const VERSION: i32 = 1001;
    pub const RELEASE: i32 = 1002;
    pub const EPOCH: i32 = 1003;
    pub const VENDOR: i32 = 1011;
    pub const LICENSE: i32 = 1014;
    pub const PACKAGER: i32 = 1015;
    pub const ARCH: i32 = 1022;
    pub const SOURCERPM: i32 = 1044;
}

/// rpm header data types.
pub(crate) mod ty {
    pub const INT32: u32 = 4;
    pub const STRING: u32 = 6;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// One index entry of a header.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: i32,
    ty: u32,
    offset: u32,
    count: u32,
}

/// A parsed header blob: its index and its data store.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Header<'a> {
    /// Parses a header blob as rpm stores it in its database: a count of
    /// index entries and a data size (big-endian 32-bit), the entries
    /// (tag, type, offset, count; 16 bytes each), then the data store.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Header<'a>, String> {
        let il = be_u32(blob, 0).ok_or("header shorter than 8 bytes")?;
        let dl = be_u32(blob, 4).ok_or("header shorter than 8 bytes")?;
        if il == 0 || il > MAX_INDEX_ENTRIES {
            return Err(format!("header index count {il} out of range"));
        }
        if dl > MAX_DATA_SIZE {
            return Err(format!("header data size {dl} out of range"));
        }
        let index_end = 8usize + 16 * il as usize;
        let data_end = index_end + dl as usize;
        if data_end > blob.len() {
            return Err(format!(
                "header needs {data_end} bytes, the blob has {}",
                blob.len()
            ));
        }
        let data = &blob[index_end..data_end];
        let mut entries = Vec::with_capacity(il as usize);
        for i in 0..il as usize {
            let at = 8 + 16 * i;
            let field = |k: usize| be_u32(blob, at + 4 * k).ok_or("truncated index entry");
            let entry = Entry {
                tag: field(0)? as i32,
                ty: field(1)?,
                offset: field(2)?,
                count: field(3)?,
            };
            if entry.offset > dl {
                return Err(format!(
                    "tag {} points past the data store ({} > {dl})",
                    entry.tag, entry.offset
                ));
            }
            entries.push(entry);
        }
        Ok(Header { entries, data })
    }

    fn entry(&self, tag: i32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// A NUL-terminated string starting at `offset` in the data store.
    fn c_string(&self, offset: usize, tag: i32) -> Result<&'a str, String> {
        let rest = self
            .data
            .get(offset..)
            .ok_or_else(|| format!("tag {tag}: offset out of range"))?;
        let window = &rest[..rest.len().min(MAX_STRING + 1)];
        let end = memchr::memchr(0, window)
            .ok_or_else(|| format!("tag {tag}: string not terminated within the data store"))?;
        std::str::from_utf8(&window[..end]).map_err(|_| format!("tag {tag}: string is not UTF-8"))
    }

    /// A string tag (STRING, or the first of an I18NSTRING or
    /// STRING_ARRAY); `None` when absent.
    pub(crate) fn string(&self, tag: i32) -> Result<Option<&'a str>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        match e.ty {
            ty::STRING | ty::I18NSTRING | ty::STRING_ARRAY if e.count >= 1 => {
                self.c_string(e.offset as usize, tag).map(Some)
            }
            _ => Err(format!(
                "tag {tag}: type {} count {} is not a string",
                e.ty, e.count
            )),
        }
    }

    /// The first value of an INT32 tag; `None` when absent.
    pub(crate) fn int32(&self, tag: i32) -> Result<Option<u32>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.ty != ty::INT32 || e.count < 1 {
            return Err(format!(
                "tag {tag}: type {} count {} is not an integer",
                e.ty, e.count
            ));
        }
        be_u32(self.data, e.offset as usize)
            .map(Some)
            .ok_or_else(|| format!("tag {tag}: integer past the data store"))
    }
}

/// `bash-5.2.26-3.fc40.src.rpm` → (`bash`, `5.2.26-3.fc40`).
fn split_source_rpm(srpm: &str) -> Option<(&str, &str)> {
    let base = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    let nv = &base[name.len() + 1..];
    Some((name, nv))
}

fn package(h: &Header<'_>, distro: &Distro, location: &str) -> Result<Option<Package>, String> {
    let name = h.string(tag::NAME)?.unwrap_or("");
    if name.is_empty() {
        return Err("no NAME".into());
    }
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let version = h
        .string(tag::VERSION)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name}: no VERSION"))?;
    let release = h
        .string(tag::RELEASE)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name}: no RELEASE"))?;
    let epoch = h.int32(tag::EPOCH)?;
    let arch = h.string(tag::ARCH)?.unwrap_or("");
    let license = h.string(tag::LICENSE)?.unwrap_or("").trim();
    let srpm = h
        .string(tag::SOURCERPM)?
        .filter(|s| !s.is_empty() && *s != "(none)");
    let vendor = h
        .string(tag::VENDOR)?
        .filter(|s| !s.is_empty() && *s != "(none)");
    let packager = h
        .string(tag::PACKAGER)?
        .filter(|s| !s.is_empty() && *s != "(none)");
    let evr = format!("{version}-{release}");
    let epoch_s = epoch.map(|e| e.to_string()).unwrap_or_default();
    let mut properties = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            properties.insert(k.to_string(), v.to_string());
        }
    };
    put(props::ARCH, arch);
    put(props::EPOCH, &epoch_s);
    if let Some(s) = srpm {
        put(props::SOURCE_RPM, s);
        if let Some((src, src_version)) = split_source_rpm(s) {
            put(props::SOURCE, src);
            put(props::SOURCE_VERSION, src_version);
        }
    }
    put(props::VENDOR, vendor.unwrap_or(""));
    put(props::MAINTAINER, packager.unwrap_or(""));
    let purl = os_package_purl(Ecosystem::Rpm, name, &evr, &properties, distro).unwrap_or_default();
    Ok(Some(Package {
        ecosystem: Ecosystem::Rpm,
        name: name.to_string(),
        version: evr,
        purl,
        licenses: if license.is_empty() {
            Vec::new()
        } else {
            vec![license.to_string()]
        },
        location: location.to_string(),
        properties,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ecosystems::fuzz;

    /// Builds header blobs the way rpm stores them (with the immutable
    /// region tag first, as rpm writes it).
    #[derive(Default)]
    pub(crate) struct HeaderBuilder {
        entries: Vec<(i32, u32, Vec<u8>, u32)>,
    }

    impl HeaderBuilder {
        pub(crate) fn string(mut self, tag: i32, s: &str) -> Self {
            let mut d = s.as_bytes().to_vec();
            d.push(0);
            self.entries.push((tag, ty::STRING, d, 1));
            self
        }
        pub(crate) fn i18n(mut self, tag: i32, s: &str) -> Self {
            let mut d = s.as_bytes().to_vec();
            d.push(0);
            self.entries.push((tag, ty::I18NSTRING, d, 1));
            self
        }
        pub(crate) fn int32(mut self, tag: i32, v: u32) -> Self {
            self.entries
                .push((tag, ty::INT32, v.to_be_bytes().to_vec(), 1));
            self
        }
        pub(crate) fn build(self) -> Vec<u8> {
            let mut data = Vec::new();
            let mut index = Vec::new();
            let il = self.entries.len() as u32 + 1;
            // Region trailer: tag 63, BIN, offset of the trailer, 16 bytes,
            // written as a negative offset to the start of the index.
            let mut region = Vec::new();
            region.extend(63i32.to_be_bytes());
            region.extend(7u32.to_be_bytes());
            region.extend((-(16 * il as i32)).to_be_bytes());
            region.extend(16u32.to_be_bytes());
            for (tag, t, bytes, count) in &self.entries {
                if *t == ty::INT32 {
                    while !data.len().is_multiple_of(4) {
                        data.push(0);
                    }
                }
                index.extend(tag.to_be_bytes());
                index.extend(t.to_be_bytes());
                index.extend((data.len() as u32).to_be_bytes());
                index.extend(count.to_be_bytes());
                data.extend(bytes);
            }
            let trailer_at = data.len() as u32;
            data.extend(&region);
            let mut blob = Vec::new();
            blob.extend(il.to_be_bytes());
            blob.extend((data.len() as u32).to_be_bytes());
            blob.extend(63i32.to_be_bytes());
            blob.extend(7u32.to_be_bytes());
            blob.extend(trailer_at.to_be_bytes());
            blob.extend(16u32.to_be_bytes());
            blob.extend(index);
            blob.extend(data);
            blob
        }
    }

    pub(crate) fn bash_header() -> Vec<u8> {
        HeaderBuilder::default()
            .string(tag::NAME, "bash")
            .string(tag::VERSION, "5.2.26")
            .string(tag::RELEASE, "3.fc40")
            .i18n(1004, "The GNU Bourne Again shell")
            .string(tag::LICENSE, "GPL-3.0-or-later")
            .string(tag::VENDOR, "Fedora Project")
            .string(tag::PACKAGER, "Fedora Project")
            .string(tag::ARCH, "x86_64")
            .string(tag::SOURCERPM, "bash-5.2.26-3.fc40.src.rpm")
            .build()
    }

    pub(crate) fn db_with(blobs: &[Vec<u8>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rpmdb.sqlite");
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS 'Name' (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));",
        )
        .unwrap();
        for b in blobs {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
                .unwrap();
        }
        drop(conn);
        std::fs::read(&file).unwrap()
    }

    fn fedora() -> Distro {
        Distro::new("fedora", Some("40"))
    }

    fn fixture_db() -> Vec<u8> {
        let openssl = HeaderBuilder::default()
            .string(tag::NAME, "openssl-libs")
            .string(tag::VERSION, "3.2.1")
            .string(tag::RELEASE, "2.fc40")
            .int32(tag::EPOCH, 1)
            .string(tag::LICENSE, "Apache-2.0")
            .string(tag::ARCH, "x86_64")
            .string(tag::SOURCERPM, "openssl-3.2.1-2.fc40.src.rpm")
            .build();
        let pubkey = HeaderBuilder::default()
            .string(tag::NAME, "gpg-pubkey")
            .string(tag::VERSION, "a15b79cc")
            .string(tag::RELEASE, "63d04c2c")
            .build();
        let no_name = HeaderBuilder::default().string(tag::VERSION, "1").build();
        db_with(&[
            bash_header(),
            openssl,
            pubkey,
            no_name,
            b"\x00\x00".to_vec(),
        ])
    }

    #[test]
    fn sqlite_database_in_wal_mode() {
        let db = fixture_db();
        assert_eq!((db[18], db[19]), (2, 2), "the fixture is in WAL mode");
        let mut warnings = Vec::new();
        let pkgs =
            parse_with_warnings("var/lib/rpm/rpmdb.sqlite", &db, &fedora(), &mut warnings).unwrap();
        assert_eq!(pkgs.len(), 2, "{pkgs:?}");
        let bash = &pkgs[0];
        assert_eq!(bash.name, "bash");
        assert_eq!(bash.version, "5.2.26-3.fc40");
        assert_eq!(
            bash.purl,
            "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40"
        );
        assert_eq!(bash.licenses, ["GPL-3.0-or-later"]);
        assert_eq!(bash.location, "/var/lib/rpm/rpmdb.sqlite");
        assert_eq!(
            bash.properties[props::SOURCE_RPM],
            "bash-5.2.26-3.fc40.src.rpm"
        );
        assert_eq!(bash.properties[props::SOURCE], "bash");
        assert_eq!(bash.properties[props::SOURCE_VERSION], "5.2.26-3.fc40");
        assert_eq!(bash.properties[props::VENDOR], "Fedora Project");
        assert_eq!(bash.properties[props::MAINTAINER], "Fedora Project");
        let ssl = &pkgs[1];
        assert_eq!(
            ssl.purl,
            "pkg:rpm/fedora/openssl-libs@3.2.1-2.fc40?arch=x86_64&distro=fedora-40&epoch=1"
        );
        assert_eq!(ssl.properties[props::EPOCH], "1");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].reason.contains("header 4: no NAME"),
            "{warnings:?}"
        );
        assert!(warnings[1].reason.contains("header 5"), "{warnings:?}");
    }

    #[test]
    fn database_written_by_rpm() {
        let Some(db) = crate::testtools::rpm_db() else {
            eprintln!("SKIPPED database_written_by_rpm: rpm and rpmbuild with the sqlite backend are not installed (apt-get install rpm)");
            return;
        };
        let mut warnings = Vec::new();
        let pkgs =
            parse_with_warnings("var/lib/rpm/rpmdb.sqlite", &db, &fedora(), &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(pkgs.len(), 1, "{pkgs:?}");
        let p = &pkgs[0];
        assert_eq!(p.name, "sbom-test");
        assert_eq!(p.version, "1.2.3-4.fc40");
        assert_eq!(
            p.purl,
            "pkg:rpm/fedora/sbom-test@1.2.3-4.fc40?arch=noarch&distro=fedora-40&epoch=2"
        );
        assert_eq!(p.licenses, ["MIT AND Apache-2.0"]);
        assert_eq!(
            p.properties[props::SOURCE_RPM],
            "sbom-test-1.2.3-4.fc40.src.rpm"
        );
        assert_eq!(p.properties[props::SOURCE], "sbom-test");
        assert_eq!(p.properties[props::EPOCH], "2");
    }

    #[test]
    fn unknown_distro_has_no_namespace() {
        let db = db_with(&[bash_header()]);
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "usr/lib/sysimage/rpm/rpmdb.sqlite",
            &db,
            &Distro::default(),
        )
        .unwrap();
        assert_eq!(p[0].purl, "pkg:rpm/bash@5.2.26-3.fc40?arch=x86_64");
    }

    #[test]
    fn not_a_database() {
        let e = crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/rpm/rpmdb.sqlite",
            b"hello",
            &fedora(),
        )
        .unwrap_err();
        assert!(e.reason.contains("not an SQLite"), "{e}");
        let mut db = fixture_db();
        db.truncate(100);
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/rpm/rpmdb.sqlite",
            &db,
            &fedora()
        )
        .is_err());
        // A database without the Packages table.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.sqlite");
        Connection::open(&f)
            .unwrap()
            .execute_batch("CREATE TABLE other (x)")
            .unwrap();
        let e = crate::ecosystems::packages(
            parse_with_warnings,
            "x",
            &std::fs::read(&f).unwrap(),
            &fedora(),
        )
        .unwrap_err();
        assert!(e.reason.contains("Packages"), "{e}");
    }

    #[test]
    fn hostile_schema_is_bounded() {
        // `Packages` as a view that would count to a very large number.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.sqlite");
        Connection::open(&f)
            .unwrap()
            .execute_batch(
                "CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000000000) SELECT x AS hnum, x'00' AS blob FROM c WHERE x = 0;",
            )
            .unwrap();
        let start = std::time::Instant::now();
        let r = crate::ecosystems::packages(
            parse_with_warnings,
            "x",
            &std::fs::read(&f).unwrap(),
            &fedora(),
        );
        assert!(r.is_err(), "{r:?}");
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn header_bounds() {
        assert!(Header::parse(b"").is_err());
        assert!(Header::parse(&[0, 0, 0, 1, 0, 0, 0, 0]).is_err());
        assert!(Header::parse(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
        assert!(Header::parse(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
        // A string without its terminating NUL.
        let mut blob = Vec::new();
        for v in [1u32, 4, tag::NAME as u32, ty::STRING, 0, 1] {
            blob.extend(v.to_be_bytes());
        }
        blob.extend(b"bash");
        let h = Header::parse(&blob).unwrap();
        assert!(h.string(tag::NAME).unwrap_err().contains("not terminated"));
        // An offset past the data store.
        blob[16..20].copy_from_slice(&5u32.to_be_bytes());
        assert!(Header::parse(&blob)
            .unwrap_err()
            .contains("past the data store"));
        // An integer that would run past the end.
        let mut blob = Vec::new();
        for v in [1u32, 4, tag::EPOCH as u32, ty::INT32, 2, 1] {
            blob.extend(v.to_be_bytes());
        }
        blob.extend([0, 0, 0, 1]);
        let h = Header::parse(&blob).unwrap();
        assert!(h.int32(tag::EPOCH).is_err());
        // Wrong types are refused, not misread.
        let blob = HeaderBuilder::default()
            .int32(tag::NAME, 7)
            .string(tag::EPOCH, "x")
            .build();
        let h = Header::parse(&blob).unwrap();
        assert!(h.string(tag::NAME).is_err());
        assert!(h.int32(tag::EPOCH).is_err());
        assert_eq!(h.string(tag::VERSION), Ok(None));
    }

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            split_source_rpm("bash-5.2.26-3.fc40.src.rpm"),
            Some(("bash", "5.2.26-3.fc40"))
        );
        assert_eq!(
            split_source_rpm("python-pip-23.3.2-1.fc40.nosrc.rpm"),
            Some(("python-pip", "23.3.2-1.fc40"))
        );
        assert_eq!(split_source_rpm("garbage"), None);
        assert_eq!(split_source_rpm("-1.src.rpm"), None);
    }

    #[test]
    fn mutated_headers_never_panic() {
        let blob = bash_header();
        fuzz::mutations(&blob, 2000, |b| {
            if let Ok(h) = Header::parse(b) {
                let _ = package(&h, &fedora(), "/x");
            }
        });
    }

    #[test]
    fn mutated_databases_never_panic() {
        let db = db_with(&[bash_header(), bash_header()]);
        fuzz::mutations(&db, 300, |b| {
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "var/lib/rpm/rpmdb.sqlite",
                b,
                &fedora(),
            );
        });
    }

    #[test]
    fn mutated_blobs_in_a_database_never_panic() {
        let blob = bash_header();
        let mut blobs = Vec::new();
        fuzz::mutations(&blob, 300, |b| blobs.push(b.to_vec()));
        let db = db_with(&blobs);
        let mut warnings = Vec::new();
        let pkgs = parse_with_warnings("x", &db, &fedora(), &mut warnings).unwrap();
        assert_eq!(pkgs.len() + warnings.len(), blobs.len());
    }
}
