//! The one way the installer writes files whose names come from a bundle or
//! a site file (`render --out`, `sbom --out`): relative to an open handle on
//! the output folder, one component at a time, never following a symbolic
//! link, so no name, however crafted, can write outside the folder.
//!
//! A name must be a safe relative path (no empty, `.` or `..` component, no
//! leading `/`, no backslash, no control or bidirectional formatting
//! character). Every folder on the way is opened with `O_NOFOLLOW`
//! relative to the one before, and created when missing; a symbolic link
//! there, or at the file's own name, is refused, naming it. Files are
//! written to a temporary name in their folder, synced, and renamed into
//! place, so a reader never sees half a file.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use airgap_format::bundle_json::is_safe_relative_path;
use airgap_format::display::{escape, is_display_safe, quote};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a file could not be written under the output folder.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    /// The name could leave the folder, or cannot be shown safely.
    #[error("{name}: not a safe relative file name (plain components only: no '..', '.', leading '/', backslash or control character)")]
    UnsafeName {
        /// The name, quoted and escaped.
        name: String,
    },
    /// A symbolic link is in the way.
    #[error("{path}: is a symbolic link; the installer never writes through one (remove it, or choose another --out folder)")]
    Symlink {
        /// Where.
        path: String,
    },
    /// Something that is not a folder is where a folder must be, or a
    /// folder where a file must be.
    #[error("{path}: is {found}, expected {expected} (remove it, or choose another --out folder)")]
    WrongType {
        /// Where.
        path: String,
        /// What is there.
        found: &'static str,
        /// What must be there.
        expected: &'static str,
    },
    /// The folder the output folder goes in is missing or not a folder.
    #[error("{message}")]
    Folder {
        /// What is wrong and the fix, naming the folder.
        message: String,
    },
    /// The operating system refused.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// An output folder, held open.
pub struct OutDir {
    fd: OwnedFd,
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "something else",
    }
}

impl OutDir {
    /// Creates the folder the operator named when missing (not its
    /// parent, which must exist: `PARENT: the output folder does not
    /// exist; create it first`), and opens it. The operator's own path may
    /// go through symbolic links; names below it may not.
    pub fn create(root: &Path) -> Result<OutDir, OutDirError> {
        let io = |source| OutDirError::Io {
            path: escape(&root.display().to_string()).into_owned(),
            source,
        };
        if !root.is_dir() {
            airgap_format::atomic_file::check_output_folder(root).map_err(|e| {
                OutDirError::Folder {
                    message: escape(&e.to_string()).into_owned(),
                }
            })?;
            if let Err(e) = std::fs::create_dir(root) {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(io(e));
                }
            }
        }
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(e.into()))?;
        Ok(OutDir {
            fd,
            root: root.to_path_buf(),
        })
    }

    /// The folder as the operator named it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `rel` is, for messages and reports.
    pub fn path_of(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn shown(&self, rel: &str) -> String {
        escape(&self.path_of(rel).display().to_string()).into_owned()
    }

    fn io(&self, rel: &str, e: Errno) -> OutDirError {
        OutDirError::Io {
            path: self.shown(rel),
            source: e.into(),
        }
    }

    /// Checks `rel` and splits it into its folders and its file name.
    fn split<'a>(&self, rel: &'a str) -> Result<(Vec<&'a str>, &'a str), OutDirError> {
        if !is_safe_relative_path(rel) || !is_display_safe(rel) {
            return Err(OutDirError::UnsafeName { name: quote(rel) });
        }
        let mut parts: Vec<&str> = rel.split('/').collect();
        let name = parts.pop().expect("non-empty");
        Ok((parts, name))
    }

    /// Opens the folder `dirs` below the root, one component at a time,
    /// creating missing ones when `create` is set. `None` when a folder is
    /// missing and `create` is not set.
    fn open_dirs(&self, dirs: &[&str], create: bool) -> Result<Option<OwnedFd>, OutDirError> {
        let mut cur = rustix::io::dup(&self.fd).map_err(|e| self.io("", e))?;
        for (i, comp) in dirs.iter().enumerate() {
            let so_far = dirs[..=i].join("/");
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = match rustix::fs::openat(&cur, *comp, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, *comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.io(&so_far, e)),
                    }
                    rustix::fs::openat(&cur, *comp, flags, Mode::empty())
                        .map_err(|e| self.explain(&cur, comp, &so_far, e, "a folder"))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.explain(&cur, comp, &so_far, e, "a folder")),
            };
            cur = next;
        }
        Ok(Some(cur))
    }

    /// Turns an `openat` failure into a message naming what is in the way.
    fn explain(
        &self,
        dir: &OwnedFd,
        name: &str,
        rel: &str,
        e: Errno,
        expected: &'static str,
    ) -> OutDirError {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => OutDirError::Symlink {
                    path: self.shown(rel),
                },
                t if (t == FileType::Directory) != (expected == "a folder") => {
                    OutDirError::WrongType {
                        path: self.shown(rel),
                        found: type_name(t),
                        expected,
                    }
                }
                _ => self.io(rel, e),
            },
            Err(_) => self.io(rel, e),
        }
    }

    /// Refuses anything but a regular file (or nothing) at `name` in `dir`.
    fn check_target(&self, dir: &OwnedFd, name: &str, rel: &str) -> Result<(), OutDirError> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => Ok(()),
                FileType::Symlink => Err(OutDirError::Symlink {
                    path: self.shown(rel),
                }),
                t => Err(OutDirError::WrongType {
                    path: self.shown(rel),
                    found: type_name(t),
                    expected: "a file",
                }),
            },
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.io(rel, e)),
        }
    }

    /// Writes `bytes` to `rel` atomically with permission bits `mode`,
    /// creating the folders on the way. Returns the path written.
    pub fn write(&self, rel: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, OutDirError> {
        let mut w = self.create_file(rel, mode)?;
        w.write_all(bytes).map_err(|source| OutDirError::Io {
            path: self.shown(rel),
            source,
        })?;
        w.commit()
    }

    /// Starts writing `rel`: the bytes go to a temporary file beside it
    /// until [`OutFile::commit`]; dropped uncommitted, it is removed.
    pub fn create_file(&self, rel: &str, mode: u32) -> Result<OutFile<'_>, OutDirError> {
        let (dirs, name) = self.split(rel)?;
        let dir = self.open_dirs(&dirs, true)?.expect("created");
        self.check_target(&dir, name, rel)?;
        let (temp, fd) = loop {
            let temp = format!(
                ".airgap-{}-{}.tmp",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match rustix::fs::openat(
                &dir,
                temp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => break (temp, fd),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(self.io(rel, e)),
            }
        };
        let file = std::fs::File::from(fd);
        Ok(OutFile {
            out: self,
            rel: rel.to_string(),
            dir,
            name: name.to_string(),
            temp: Some(temp),
            file,
            mode,
        })
    }

    /// Removes the regular file `rel`, if there is one; a symbolic link
    /// there is removed too (never followed). True when something was.
    pub fn remove_file(&self, rel: &str) -> Result<bool, OutDirError> {
        let (dirs, name) = self.split(rel)?;
        let Some(dir) = self.open_dirs(&dirs, false)? else {
            return Ok(false);
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(false),
            Ok(_) => {
                rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(|e| self.io(rel, e))?;
                Ok(true)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(self.io(rel, e)),
        }
    }

    /// The names of the entries (files, links, anything but folders) in
    /// the folder `rel`, sorted; empty when it does not exist.
    pub fn list_files(&self, rel: &str) -> Result<Vec<String>, OutDirError> {
        let (mut dirs, last) = self.split(rel)?;
        dirs.push(last);
        let Some(dir) = self.open_dirs(&dirs, false)? else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        let listing = rustix::fs::Dir::read_from(&dir).map_err(|e| self.io(rel, e))?;
        for entry in listing {
            let entry = entry.map_err(|e| self.io(rel, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." || entry.file_type() == FileType::Directory {
                continue;
            }
            names.push(name);
        }
        names.sort();
        Ok(names)
    }
}

/// A file being written under an [`OutDir`].
pub struct OutFile<'a> {
    out: &'a OutDir,
    rel: String,
    dir: OwnedFd,
    name: String,
    temp: Option<String>,
    file: std::fs::File,
    mode: u32,
}

impl OutFile<'_> {
    /// Syncs the file, gives it its mode and moves it to its name.
    pub fn commit(mut self) -> Result<PathBuf, OutDirError> {
        let io = |source: std::io::Error| OutDirError::Io {
            path: self.out.shown(&self.rel),
            source,
        };
        self.file.flush().map_err(io)?;
        rustix::fs::fchmod(self.file.as_fd(), Mode::from_raw_mode(self.mode))
            .map_err(|e| io(e.into()))?;
        self.file.sync_all().map_err(io)?;
        // Checked again: something may have appeared since.
        self.out.check_target(&self.dir, &self.name, &self.rel)?;
        let temp = self.temp.take().expect("not committed yet");
        rustix::fs::renameat(&self.dir, temp.as_str(), &self.dir, self.name.as_str()).map_err(
            |e| {
                let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
                io(e.into())
            },
        )?;
        rustix::fs::fsync(&self.dir).map_err(|e| io(e.into()))?;
        Ok(self.out.path_of(&self.rel))
    }
}

impl Write for OutFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for OutFile<'_> {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn names_cannot_leave_the_folder() {
        let top = tempfile::tempdir().unwrap();
        let out = OutDir::create(&top.path().join("out")).unwrap();
        let victim = top.path().join("victim");
        for bad in [
            "../victim",
            "a/../../victim",
            "/tmp/x",
            "charts/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
            "x\u{1b}]0;t\u{7}",
            "evil\u{202e}lmth.exe",
            "",
        ] {
            let e = out.write(bad, b"x", 0o644).unwrap_err().to_string();
            assert!(e.contains("not a safe relative file name"), "{bad:?}: {e}");
            assert!(is_display_safe(&e), "{e}");
        }
        assert!(!victim.exists());
        let p = out.write("charts/a-1.0.0.tgz", b"chart", 0o644).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"chart");
        assert_eq!(p, top.path().join("out/charts/a-1.0.0.tgz"));
    }

    #[test]
    fn symbolic_links_are_refused_never_followed() {
        let top = tempfile::tempdir().unwrap();
        let outside = top.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = top.path().join("out");
        let out = OutDir::create(&root).unwrap();
        // A link as a folder on the way.
        symlink(&outside, root.join("values")).unwrap();
        let e = out
            .write("values/a.yaml", b"x", 0o644)
            .unwrap_err()
            .to_string();
        assert!(e.contains("values: is a symbolic link"), "{e}");
        // A link at the file's own name, dangling or not.
        symlink(outside.join("target"), root.join("plan.json")).unwrap();
        let e = out.write("plan.json", b"x", 0o644).unwrap_err().to_string();
        assert!(e.contains("plan.json: is a symbolic link"), "{e}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        // A folder where a file goes, a file where a folder goes.
        std::fs::create_dir(root.join("ca.pem")).unwrap();
        let e = out.write("ca.pem", b"x", 0o644).unwrap_err().to_string();
        assert!(e.contains("is a folder, expected a file"), "{e}");
        std::fs::write(root.join("charts"), b"").unwrap();
        let e = out
            .write("charts/a.tgz", b"x", 0o644)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a file, expected a folder"), "{e}");
        // Removing a link removes the link, not its target.
        std::fs::write(outside.join("keep"), b"k").unwrap();
        symlink(outside.join("keep"), root.join("old")).unwrap();
        assert!(out.remove_file("old").unwrap());
        assert!(outside.join("keep").exists());
        // Listing does not follow the linked folder.
        let e = out.list_files("values").unwrap_err().to_string();
        assert!(e.contains("values: is a symbolic link"), "{e}");
    }

    #[test]
    fn writes_are_atomic_with_modes() {
        let top = tempfile::tempdir().unwrap();
        let out = OutDir::create(top.path()).unwrap();
        out.write("values/s.yaml", b"secret", 0o600).unwrap();
        out.write("install-plan.sh", b"#!/bin/sh\n", 0o755).unwrap();
        let mode = |r: &str| {
            std::fs::metadata(top.path().join(r))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("values/s.yaml"), 0o600);
        assert_eq!(mode("install-plan.sh"), 0o755);
        // An abandoned file leaves nothing behind.
        let mut f = out.create_file("values/t.yaml", 0o644).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(out.list_files("values").unwrap(), vec!["s.yaml"]);
        assert!(out.remove_file("values/s.yaml").unwrap());
        assert!(!out.remove_file("values/s.yaml").unwrap());
        assert!(out.list_files("nothing").unwrap().is_empty());
    }
}
