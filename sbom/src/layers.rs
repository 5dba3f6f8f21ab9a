//! Reads an image's layers in order, as a container runtime would stack
//! them, without unpacking anything: each layer is a tar stream (plain, gzip
//! or zstd) read once, front to back. Files the caller is interested in are
//! handed to a scanner as they pass. What the scanner returns is kept per
//! path and layer, and whiteouts in later layers remove it again:
//!
//! - `DIR/.wh.NAME` removes `DIR/NAME` (and everything under it) from lower
//!   layers;
//! - `DIR/.wh..wh..opq` makes `DIR` opaque: everything under it from lower
//!   layers is removed;
//! - any entry at a path replaces what lower layers had there.
//!
//! The result is what the final filesystem holds.
//!
//! What reading one layer gave ([`LayerOps`]) depends only on the layer's
//! bytes, the classifier and the scanner, so a caller can keep it and hand
//! it back later ([`Layer::Known`]) instead of reading the layer again.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

/// Longest path considered (longer ones are skipped).
const MAX_PATH: usize = 4096;

/// How a layer's bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// From an OCI or Docker layer media type; `None` when it says nothing.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") || media_type.ends_with(".tar.v1") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// From the first bytes of a layer.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// What the walker should do with a regular file it meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Not interesting.
    Skip,
    /// Read it (at most this many bytes; larger files are skipped and
    /// reported) and pass it to the scanner.
    Read(u64),
}

/// A file met in a layer, as the classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct FileInfo<'a> {
    /// Path without a leading `./` or `/`.
    pub path: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
}

/// Something the walk noticed but did not stop for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Index of the layer.
    pub layer: usize,
    /// Path concerned, when there is one.
    pub path: Option<String>,
    /// What happened.
    pub message: String,
}

/// What the walk found: per path, the layer it last came from and what the
/// scanner made of it, after whiteouts.
pub struct Walk<T> {
    /// Visible paths → (layer index, scanner result).
    pub found: BTreeMap<String, (usize, T)>,
    /// Oversized files, unreadable entries and the like.
    pub warnings: Vec<Warning>,
    /// What reading each layer gave, for the layers read in this walk when
    /// asked for ([`walk_layers`]'s `keep`; `None` for the others and for
    /// those given as [`Layer::Known`]), to keep for a later walk.
    pub read: Vec<Option<LayerOps<T>>>,
}

/// One layer to stack: its bytes, or what reading them gave before.
pub enum Layer<'r, T> {
    /// A tar stream to read, compressed as said.
    Read(Compression, Box<dyn Read + Send + 'r>),
    /// The result of an earlier reading of the same layer with the same
    /// classifier and scanner.
    Known(LayerOps<T>),
}

/// Everything reading one layer gave: what it does to the filesystem, in
/// entry order, and the warnings. It does not depend on the other layers,
/// so it can be stored (it is serde-serializable) and reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerOps<T> {
    ops: Vec<Op<T>>,
    /// (path, message) of each warning.
    warnings: Vec<(Option<String>, String)>,
}

/// Errors that stop the walk: a layer that is not a readable tar stream.
#[derive(Debug)]
pub struct WalkError {
    /// Index of the layer.
    pub layer: usize,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "layer {}: {}", self.layer, self.message)
    }
}

impl std::error::Error for WalkError {}

/// What one layer does to the filesystem, in entry order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Op<T> {
    /// `DIR/.wh..wh..opq`: hide everything lower layers had under DIR.
    Opaque(String),
    /// `DIR/.wh.NAME`: hide DIR/NAME and everything under it.
    Whiteout(String),
    /// Any entry at a path: replaces what lower layers had there (and,
    /// unless it is a directory, everything under it).
    Replace(String, bool),
    /// A scanned file's result.
    File(String, T),
    /// A hard link to another path (of this layer or a lower one).
    Link(String, String),
}

/// A layer's decompressed tar stream.
fn decompress<'r>(
    compression: Compression,
    reader: Box<dyn Read + Send + 'r>,
) -> std::io::Result<Box<dyn Read + Send + 'r>> {
    Ok(match compression {
        Compression::None => reader,
        Compression::Gzip => crate::gunzip::decoder(reader),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// Size of the chunks a decompression thread hands to the tar reader.
const PIPE_CHUNK: usize = 1 << 20;

/// The reading end of a decompression thread: chunks arrive over a bounded
/// channel, so at most a few MiB are in flight.
struct Pipe {
    rx: crossbeam_channel::Receiver<std::io::Result<Vec<u8>>>,
    /// Chunks read to the end go back to the decompression thread, which
    /// refills them instead of allocating (and zeroing) new ones.
    spent: crossbeam_channel::Sender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for Pipe {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let old = std::mem::replace(&mut self.buf, chunk);
                    if old.capacity() >= PIPE_CHUNK {
                        let _ = self.spent.try_send(old);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decompresses `stream` on a thread of its own within `scope`, so that
/// inflating and walking the tar stream use two cores. Used when there are
/// fewer layers than cores (a one-layer image would otherwise leave a core
/// idle). The thread stops when the reader is dropped.
fn pipelined<'scope, 'r: 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut stream: Box<dyn Read + Send + 'r>,
) -> Box<dyn Read + 'scope> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    let (spent, reuse) = crossbeam_channel::bounded::<Vec<u8>>(4);
    scope.spawn(move || loop {
        let mut chunk = reuse.try_recv().unwrap_or_default();
        chunk.resize(PIPE_CHUNK, 0);
        let mut filled = 0;
        let result = loop {
            match stream.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == chunk.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(filled);
        let done = filled < PIPE_CHUNK;
        let sent = match result {
            Ok(()) if filled == 0 => return,
            Ok(()) => tx.send(Ok(chunk)),
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if sent.is_err() || done {
            return;
        }
    });
    Box::new(Pipe {
        rx,
        spent,
        buf: Vec::new(),
        pos: 0,
    })
}

/// Files larger than this are not read into memory: they are copied to an
/// unnamed temporary file (in `TMPDIR`, gone when closed) and the scanner
/// gets [`Content::Spooled`]. With several layers read at once, this keeps
/// the memory a scan needs bounded however large the executables and
/// archives in the images are.
pub const SPOOL_ABOVE: u64 = 4 * 1024 * 1024;

/// A wanted file's bytes, as the scanner gets them.
pub enum Content<'a> {
    /// Read into memory (files of at most [`SPOOL_ABOVE`] bytes).
    Memory(&'a [u8]),
    /// Copied to an unnamed temporary file of this many bytes (larger
    /// files): read what is needed by offset.
    Spooled(&'a std::fs::File, u64),
}

impl Content<'_> {
    /// The whole file, in memory.
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Content::Memory(bytes) => Ok(bytes.to_vec()),
            Content::Spooled(file, size) => {
                use std::os::unix::fs::FileExt;
                let len = usize::try_from(*size).map_err(std::io::Error::other)?;
                let mut bytes = vec![0; len];
                file.read_exact_at(&mut bytes, 0)?;
                Ok(bytes)
            }
        }
    }
}

/// Copies at most `max` bytes of `entry` to an unnamed temporary file.
fn spool(entry: &mut impl Read, max: u64) -> Result<(std::fs::File, u64), String> {
    let tmp = std::env::temp_dir();
    let mut file = tempfile::tempfile().map_err(|e| {
        format!(
            "cannot create a temporary file in {} to scan it: {e}; set TMPDIR to a writable folder",
            tmp.display()
        )
    })?;
    let size = std::io::copy(&mut entry.take(max), &mut file).map_err(|e| {
        format!(
            "cannot copy it to a temporary file in {} to scan it: {e}; set TMPDIR to a folder with room",
            tmp.display()
        )
    })?;
    Ok((file, size))
}

/// Reads one layer front to back: its operations and warnings.
fn read_layer<T>(
    i: usize,
    stream: Box<dyn Read + '_>,
    classify: &(dyn Fn(&FileInfo) -> Want + Sync),
    scan: &(dyn Fn(&str, Content<'_>) -> Option<T> + Sync),
) -> Result<LayerOps<T>, WalkError> {
    let err = |message: String| WalkError { layer: i, message };
    let mut ops = Vec::new();
    let mut warnings = Vec::new();
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| err(format!("not a tar stream: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(format!("corrupt tar stream: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let Ok(text) = String::from_utf8(raw) else {
            continue;
        };
        let path = normalize(&text);
        if path.is_empty() || path.len() > MAX_PATH {
            continue;
        }
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", path.as_str()),
        };
        if base == ".wh..wh..opq" {
            ops.push(Op::Opaque(dir.to_string()));
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            ops.push(Op::Whiteout(target));
            continue;
        }
        let kind = entry.header().entry_type();
        ops.push(Op::Replace(path.clone(), kind.is_dir()));
        if kind.is_hard_link() {
            if let Some(target) = entry
                .link_name_bytes()
                .and_then(|b| String::from_utf8(b.into_owned()).ok())
            {
                ops.push(Op::Link(path, normalize(&target)));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let info = FileInfo {
            path: &path,
            size: entry.size(),
            mode: entry.header().mode().unwrap_or(0),
        };
        let Want::Read(max) = classify(&info) else {
            continue;
        };
        if info.size > max {
            warnings.push((
                Some(path.clone()),
                format!(
                    "{} bytes, above the {max}-byte limit; not scanned",
                    info.size
                ),
            ));
            continue;
        }
        let found = if info.size > SPOOL_ABOVE {
            let spooled = spool(&mut entry, max)
                .map_err(|e| err(format!("{path} ({} bytes): {e}", info.size)))?;
            scan(&path, Content::Spooled(&spooled.0, spooled.1))
        } else {
            let mut bytes = Vec::with_capacity(info.size as usize);
            if let Err(e) = (&mut entry).take(max).read_to_end(&mut bytes) {
                return Err(err(format!("{path}: cannot read: {e}")));
            }
            scan(&path, Content::Memory(&bytes))
        };
        if let Some(v) = found {
            ops.push(Op::File(path, v));
        }
    }
    // Read on past the end-of-archive blocks (padding, then the gzip
    // trailer), so that a layer whose CRC-32 or length is wrong is refused
    // even when its tar stream ended cleanly.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
        .map_err(|e| err(format!("corrupt tar stream: after the end of archive: {e}")))?;
    Ok(LayerOps { ops, warnings })
}

/// Stacks the layers, in order, calling `classify` for every regular file
/// and `scan` with the bytes of each file it wants. Layers are decompressed
/// and read in parallel (one thread per core); what they do is then applied
/// in layer order, so the result is the same as reading them one by one.
pub fn walk<'r, T: Clone + Send>(
    layers: impl IntoIterator<Item = (Compression, Box<dyn Read + Send + 'r>)>,
    classify: impl Fn(&FileInfo) -> Want + Sync,
    scan: impl Fn(&str, Content<'_>) -> Option<T> + Sync,
) -> Result<Walk<T>, WalkError> {
    walk_layers(
        layers.into_iter().map(|(c, r)| Layer::Read(c, r)),
        false,
        classify,
        scan,
    )
}

/// [`walk`] over layers some of which may be known from an earlier
/// reading: those are not read, and their stored operations are applied in
/// their place. The result is the same as reading every layer. With `keep`,
/// [`Walk::read`] holds what reading the others gave.
pub fn walk_layers<'r, T: Clone + Send>(
    layers: impl IntoIterator<Item = Layer<'r, T>>,
    keep: bool,
    classify: impl Fn(&FileInfo) -> Want + Sync,
    scan: impl Fn(&str, Content<'_>) -> Option<T> + Sync,
) -> Result<Walk<T>, WalkError> {
    type Input<'r> = (Compression, Box<dyn Read + Send + 'r>);
    type Slot<T> = std::sync::Mutex<Option<Result<LayerOps<T>, WalkError>>>;
    let mut known: Vec<Option<LayerOps<T>>> = Vec::new();
    let mut inputs: Vec<(usize, std::sync::Mutex<Option<Input<'r>>>)> = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        match layer {
            Layer::Read(c, r) => {
                inputs.push((i, std::sync::Mutex::new(Some((c, r)))));
                known.push(None);
            }
            Layer::Known(ops) => known.push(Some(ops)),
        }
    }
    let results: Vec<Slot<T>> = inputs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = cores.min(inputs.len());
    // Fewer layers to read than cores: give each layer's decompression a
    // core too.
    let pipeline = inputs.len() < cores;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((i, slot)) = inputs.get(k) else {
                    return;
                };
                let i = *i;
                let (compression, reader) = slot.lock().expect("lock").take().expect("once");
                let r = match decompress(compression, reader) {
                    Err(e) => Err(WalkError {
                        layer: i,
                        message: format!("not zstd: {e}"),
                    }),
                    Ok(stream) if pipeline => read_layer(i, pipelined(s, stream), &classify, &scan),
                    Ok(stream) => read_layer(i, stream, &classify, &scan),
                };
                *results[k].lock().expect("lock") = Some(r);
            });
        }
    });
    let mut layers = known;
    for ((i, _), r) in inputs.iter().zip(results) {
        layers[*i] = Some(r.into_inner().expect("lock").expect("every layer read")?);
    }
    // Copies of what was read, only for a caller that keeps them.
    let mut read: Vec<Option<LayerOps<T>>> = layers.iter().map(|_| None).collect();
    if keep {
        for (i, _) in &inputs {
            read[*i] = layers[*i].clone();
        }
    }
    let mut found: BTreeMap<String, (usize, T)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        let layer = layer.expect("every layer known or read");
        warnings.extend(layer.warnings.into_iter().map(|(path, message)| Warning {
            layer: i,
            path,
            message,
        }));
        for op in layer.ops {
            match op {
                Op::Opaque(dir) => remove_lower(&mut found, i, &dir, true),
                Op::Whiteout(target) => remove_lower(&mut found, i, &target, false),
                Op::Replace(path, is_dir) => {
                    if is_dir {
                        if found.get(&path).is_some_and(|(l, _)| *l < i) {
                            found.remove(&path);
                        }
                    } else {
                        remove_lower(&mut found, i, &path, false);
                    }
                }
                Op::File(path, v) => {
                    found.insert(path, (i, v));
                }
                Op::Link(path, target) => {
                    if let Some(v) = found.get(&target).map(|(_, v)| v.clone()) {
                        found.insert(path, (i, v));
                    }
                }
            }
        }
    }
    Ok(Walk {
        found,
        warnings,
        read,
    })
}

/// `./a/b`, `/a/b/` → `a/b`.
fn normalize(p: &str) -> String {
    let p = p.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

/// Removes entries from layers below `layer`: `target` itself and what is
/// under it, or (for an opaque directory) only what is under it.
fn remove_lower<T>(
    found: &mut BTreeMap<String, (usize, T)>,
    layer: usize,
    target: &str,
    only_children: bool,
) {
    let prefix = if target.is_empty() {
        String::new()
    } else {
        format!("{target}/")
    };
    found.retain(|p, (l, _)| {
        let hit = (!only_children && p == target) || p.starts_with(&prefix);
        !(hit && *l < layer)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        tar_of(files, None)
    }

    /// A tar stream of `files`, then a hard link (path, target) if given.
    fn tar_of(files: &[(&str, &[u8])], link: Option<(&str, &str)>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        if let Some((path, target)) = link {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            b.append_link(&mut h, path, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn run(layers: Vec<Vec<u8>>) -> BTreeMap<String, (usize, String)> {
        let input: Vec<(Compression, Box<dyn Read + Send>)> = layers
            .into_iter()
            .map(|l| {
                let c = Compression::sniff(&l);
                (c, Box::new(std::io::Cursor::new(l)) as Box<dyn Read + Send>)
            })
            .collect();
        walk(
            input,
            |f| {
                if f.path.ends_with(".txt") {
                    Want::Read(1024)
                } else {
                    Want::Skip
                }
            },
            |_, b| Some(String::from_utf8_lossy(&b.to_vec().unwrap()).into_owned()),
        )
        .unwrap()
        .found
    }

    #[test]
    fn large_files_are_spooled_and_read_the_same() {
        let big: Vec<u8> = (0..SPOOL_ABOVE as usize + 4097)
            .map(|i| (i % 251) as u8)
            .collect();
        let small = b"small".to_vec();
        let input: Vec<(Compression, Box<dyn Read + Send>)> = vec![(
            Compression::Gzip,
            Box::new(std::io::Cursor::new(gzip(&layer(&[
                ("big.bin", &big),
                ("small.bin", &small),
            ])))),
        )];
        let w = walk(
            input,
            |_| Want::Read(u64::MAX),
            |_, c| {
                let spooled = matches!(c, Content::Spooled(..));
                Some((spooled, c.to_vec().unwrap()))
            },
        )
        .unwrap();
        assert_eq!(w.found["big.bin"].1, (true, big));
        assert_eq!(w.found["small.bin"].1, (false, small));
    }

    #[test]
    fn whiteouts_and_overrides() {
        let l0 = layer(&[
            ("a/keep.txt", b"0"),
            ("a/gone.txt", b"0"),
            ("b/x.txt", b"0"),
            ("c/over.txt", b"0"),
            ("d/sub/deep.txt", b"0"),
        ]);
        let l1 = gzip(&layer(&[
            ("a/.wh.gone.txt", b""),
            ("b/.wh..wh..opq", b""),
            ("b/new.txt", b"1"),
            ("./c/over.txt", b"1"),
            ("d/.wh.sub", b""),
        ]));
        let found = run(vec![l0, l1]);
        let got: Vec<(&str, usize, &str)> = found
            .iter()
            .map(|(p, (l, v))| (p.as_str(), *l, v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a/keep.txt", 0, "0"),
                ("b/new.txt", 1, "1"),
                ("c/over.txt", 1, "1"),
            ]
        );
    }

    #[test]
    fn a_directory_replaced_by_a_file_takes_its_contents_with_it() {
        let l0 = layer(&[("app/x/a.txt", b"0"), ("app/keep.txt", b"0")]);
        let l1 = layer(&[("app/x", b"now a file")]);
        let found = run(vec![l0, l1]);
        assert_eq!(found.keys().collect::<Vec<_>>(), ["app/keep.txt"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let input: Vec<(Compression, Box<dyn Read + Send>)> = vec![(
            Compression::Gzip,
            Box::new(std::io::Cursor::new(b"\x1f\x8bnot really".to_vec())),
        )];
        let e = walk(input, |_| Want::Read(10), |_, _| Some(()))
            .err()
            .unwrap();
        assert_eq!(e.layer, 0);
    }

    #[test]
    fn a_truncated_or_corrupt_gzip_layer_fails_the_walk() {
        let whole = gzip(&layer(&[("a.txt", &[b'x'; 300_000]), ("b.txt", b"b")]));
        // The tar stream inside is whole in both: only the gzip trailer
        // (CRC-32, then length) is cut short or wrong.
        let mut wrong_crc = whole.clone();
        let at = wrong_crc.len() - 6;
        wrong_crc[at] ^= 0x40;
        for (what, bytes) in [
            ("truncated", whole[..whole.len() - 5].to_vec()),
            ("wrong CRC-32", wrong_crc),
        ] {
            let input: Vec<(Compression, Box<dyn Read + Send>)> = vec![
                (
                    Compression::None,
                    Box::new(std::io::Cursor::new(layer(&[]))),
                ),
                (Compression::Gzip, Box::new(std::io::Cursor::new(bytes))),
            ];
            let e = walk(input, |_| Want::Read(10), |_, _| Some(()))
                .err()
                .unwrap_or_else(|| panic!("{what} layer accepted"));
            assert_eq!(e.layer, 1, "{what}: {e}");
            assert!(e.message.contains("tar stream"), "{what}: {e}");
        }
    }

    fn walk_some(layers: &[Vec<u8>], known: &[Option<LayerOps<String>>]) -> Walk<String> {
        let input = layers.iter().zip(known).map(|(l, k)| match k {
            Some(ops) => Layer::Known(ops.clone()),
            None => Layer::Read(
                Compression::sniff(l),
                Box::new(std::io::Cursor::new(l.clone())) as Box<dyn Read + Send>,
            ),
        });
        walk_layers(
            input,
            true,
            |f| Want::Read(if f.path.starts_with("big") { 2 } else { 1024 }),
            |_, b| Some(String::from_utf8_lossy(&b.to_vec().unwrap()).into_owned()),
        )
        .unwrap()
    }

    #[test]
    fn known_layers_stand_in_for_reading_them() {
        let layers = vec![
            layer(&[
                ("a/keep.txt", b"0"),
                ("a/gone.txt", b"0"),
                ("b/x.txt", b"0"),
                ("big.txt", b"too big"),
            ]),
            gzip(&tar_of(
                &[("a/.wh.gone.txt", b""), ("b/.wh..wh..opq", b"")],
                Some(("b/linked.txt", "a/keep.txt")),
            )),
            layer(&[("a/keep.txt", b"2"), ("c/new.txt", b"2")]),
        ];
        let none = vec![None, None, None];
        let first = walk_some(&layers, &none);
        let read: Vec<Option<LayerOps<String>>> = first.read.clone();
        assert!(read.iter().all(Option::is_some));
        let want: Vec<(&str, usize, &str)> = vec![
            ("a/keep.txt", 2, "2"),
            ("b/linked.txt", 1, "0"),
            ("c/new.txt", 2, "2"),
        ];
        let got = |w: &Walk<String>| -> Vec<(String, usize, String)> {
            w.found
                .iter()
                .map(|(p, (l, v))| (p.clone(), *l, v.clone()))
                .collect()
        };
        let want: Vec<(String, usize, String)> = want
            .into_iter()
            .map(|(p, l, v)| (p.to_string(), l, v.to_string()))
            .collect();
        assert_eq!(got(&first), want);
        assert_eq!(first.warnings.len(), 1, "{:?}", first.warnings);
        assert_eq!(first.warnings[0].path.as_deref(), Some("big.txt"));
        // Every mix of known and read layers, the known ones after a trip
        // through a serde format, gives the same walk.
        for mask in 0..8u32 {
            let known: Vec<Option<LayerOps<String>>> = (0..3)
                .map(|i| {
                    (mask & (1 << i) != 0).then(|| {
                        let json = serde_json::to_vec(read[i].as_ref().unwrap()).unwrap();
                        serde_json::from_slice(&json).unwrap()
                    })
                })
                .collect();
            let w = walk_some(&layers, &known);
            assert_eq!(got(&w), want, "mask {mask:03b}");
            assert_eq!(w.warnings, first.warnings, "mask {mask:03b}");
            for i in 0..3 {
                assert_eq!(w.read[i].is_some(), known[i].is_none(), "mask {mask:03b}");
                if let Some(ops) = &w.read[i] {
                    assert_eq!(Some(ops), read[i].as_ref());
                }
            }
        }
    }
}
