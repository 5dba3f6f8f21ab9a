//! Streaming gzip decompression for the layer walker.
//!
//! Inflating is nearly all of a layer scan's CPU time (`perf` put
//! miniz_oxide's inflate at 64 % of a build's samples). With the `isal`
//! feature, which only the bundler enables, gzip layers are inflated by
//! Intel ISA-L (`isal-sys`, built from source and linked statically), about
//! 1.6 times as fast as miniz_oxide on a real Debian layer (and as fast on
//! incompressible data, where both decode one literal per byte); without it, by
//! flate2. Both accept the same inputs: concatenated members, any header
//! fields, and nothing after the last member; both check every member's
//! CRC-32 and length, so a corrupt or truncated layer is an error, never
//! different bytes. `examples/gunzip_speed.rs` times the two on any files.

use std::io::Read;

/// The decoder [`decoder`] uses: `"isal"` or `"flate2"`.
#[cfg(feature = "isal")]
pub const NAME: &str = "isal";
/// The decoder [`decoder`] uses: `"isal"` or `"flate2"`.
#[cfg(not(feature = "isal"))]
pub const NAME: &str = "flate2";

/// A reader of the decompressed bytes of the gzip stream `reader` yields
/// (every member, in order).
pub fn decoder<'r>(reader: Box<dyn Read + Send + 'r>) -> Box<dyn Read + Send + 'r> {
    #[cfg(feature = "isal")]
    {
        // No BufReader on top: measured, it only added a copy (small
        // reads, such as tar's 512-byte headers, go through ISA-L's own
        // output buffer).
        Box::new(isal::Gunzip::new(reader))
    }
    #[cfg(not(feature = "isal"))]
    {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    }
}

#[cfg(feature = "isal")]
mod isal {
    use isal_sys::igzip_lib as ffi;
    use std::io::{self, Read};

    /// Compressed bytes read from the source at a time.
    const INPUT_CHUNK: usize = 128 * 1024;

    /// ISA-L's `isal_inflate` over a reader: a gzip stream of one or more
    /// members. The inflate state and the input buffer live on the heap and
    /// the state's pointers are set before every call, so the reader can be
    /// moved between calls.
    pub(super) struct Gunzip<R> {
        source: R,
        state: Box<ffi::inflate_state>,
        input: Box<[u8]>,
        /// Unconsumed input: `input[start..end]`.
        start: usize,
        end: usize,
        /// The source has returned end of file.
        eof: bool,
        /// Set once an error has been returned; every later read fails.
        failed: bool,
    }

    // SAFETY: the state's raw pointers (`next_in`, `next_out`) are
    // overwritten before every `isal_inflate` call to point into buffers
    // that call borrows (`input`, owned by `self`, and the caller's slice);
    // between calls they are never dereferenced. `gzip_hdr` stays null:
    // `isal_inflate` parses gzip headers into a header of its own. So the
    // state refers to no shared or thread-local data and moves with `self`.
    unsafe impl<R: Send> Send for Gunzip<R> {}

    impl<R: Read> Gunzip<R> {
        pub(super) fn new(source: R) -> Self {
            // SAFETY: `inflate_state` is a plain C struct of integers,
            // arrays and pointers, for which all-zero bytes are valid;
            // `isal_inflate_init` then sets every field inflating reads.
            // Zeroed in place on the heap: the struct is tens of KiB.
            let mut state: Box<ffi::inflate_state> = unsafe { Box::new_zeroed().assume_init() };
            unsafe { ffi::isal_inflate_init(&mut *state) };
            state.crc_flag = ffi::ISAL_GZIP;
            Gunzip {
                source,
                state,
                input: vec![0u8; INPUT_CHUNK].into_boxed_slice(),
                start: 0,
                end: 0,
                eof: false,
                failed: false,
            }
        }

        fn refill(&mut self) -> io::Result<()> {
            loop {
                match self.source.read(&mut self.input) {
                    Ok(n) => {
                        self.start = 0;
                        self.end = n;
                        self.eof = n == 0;
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }

        fn finished(&self) -> bool {
            self.state.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH
        }

        fn step(&mut self, out: &mut [u8]) -> io::Result<usize> {
            // Calls in a row that moved no byte (only ISA-L's state).
            let mut idle = 0;
            loop {
                if self.start == self.end && !self.eof {
                    self.refill()?;
                }
                if self.finished() {
                    if self.start == self.end && self.eof {
                        return Ok(0);
                    }
                    // Another member follows: same settings, fresh state.
                    unsafe { ffi::isal_inflate_reset(&mut *self.state) };
                }
                let avail_in = self.end - self.start;
                let avail_out = out.len().min(u32::MAX as usize);
                let before = self.state.block_state;
                self.state.next_in = self.input[self.start..].as_mut_ptr();
                self.state.avail_in = avail_in as u32;
                self.state.next_out = out.as_mut_ptr();
                self.state.avail_out = avail_out as u32;
                // SAFETY: `next_in`/`avail_in` describe initialised bytes
                // of `self.input` and `next_out`/`avail_out` the caller's
                // writable slice, both alive for the call; ISA-L reads and
                // writes only within them and its own state.
                let ret = unsafe { ffi::isal_inflate(&mut *self.state) };
                self.state.next_in = std::ptr::null_mut();
                self.state.next_out = std::ptr::null_mut();
                let (Some(consumed), Some(produced)) = (
                    avail_in.checked_sub(self.state.avail_in as usize),
                    avail_out.checked_sub(self.state.avail_out as usize),
                ) else {
                    return Err(corrupt(i32::MIN));
                };
                self.start += consumed;
                if ret < 0 {
                    return Err(corrupt(ret));
                }
                if produced > 0 {
                    return Ok(produced);
                }
                if consumed > 0 {
                    idle = 0;
                    continue;
                }
                idle += 1;
                if (self.state.block_state != before || self.finished()) && idle < 8 {
                    continue;
                }
                if self.eof {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "gzip stream is truncated",
                    ));
                }
                // Input on hand and room for output, yet nothing moved:
                // ISA-L can stall this way on some malformed headers.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "corrupt gzip stream: inflating made no progress",
                ));
            }
        }
    }

    impl<R: Read> Read for Gunzip<R> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if out.is_empty() {
                return Ok(0);
            }
            if self.failed {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "gzip stream failed earlier",
                ));
            }
            let result = self.step(out);
            self.failed = result.is_err();
            result
        }
    }

    /// The error for a negative `isal_inflate` return.
    fn corrupt(ret: i32) -> io::Error {
        let what = match ret {
            ffi::ISAL_INVALID_BLOCK => "invalid deflate block",
            ffi::ISAL_INVALID_SYMBOL => "invalid deflate symbol",
            ffi::ISAL_INVALID_LOOKBACK => "invalid back-reference distance",
            ffi::ISAL_INVALID_WRAPPER => "invalid gzip header",
            ffi::ISAL_UNSUPPORTED_METHOD => "unsupported compression method",
            ffi::ISAL_INCORRECT_CHECKSUM => "CRC-32 or length mismatch",
            _ => "inflate failed",
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt gzip stream: {what} (ISA-L {ret})"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::decoder;
    use flate2::{write::GzEncoder, Compression, GzBuilder};
    use std::io::{Read, Write};

    /// A small xorshift generator: the tests need varied, repeatable bytes.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Text-like bytes that deflate well (long matches, dynamic blocks).
    fn compressible(n: usize, rng: &mut Rng) -> Vec<u8> {
        let words = [
            &b"Package: "[..],
            b"libc6",
            b"\nVersion: 2.36-9",
            b" ",
            b"amd64\n",
        ];
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            v.extend_from_slice(words[(rng.next() % words.len() as u64) as usize]);
        }
        v.truncate(n);
        v
    }

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Decompresses with `read` calls of at most `step` bytes.
    fn gunzip(data: &[u8], step: usize) -> std::io::Result<Vec<u8>> {
        let mut r = decoder(Box::new(data));
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn reference(data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_every_kind_of_stream() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let random = rng.bytes(700_000);
        let text = compressible(3_000_000, &mut rng);
        let mut cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (Vec::new(), gzip(&[], 6)),
            (b"x".to_vec(), gzip(b"x", 6)),
            (random.clone(), gzip(&random, 0)),
            (random.clone(), gzip(&random, 6)),
            (text.clone(), gzip(&text, 1)),
            (text.clone(), gzip(&text, 9)),
        ];
        // Header fields a decoder must skip: name, comment, extra, mtime.
        let mut e = GzBuilder::new()
            .filename("layer.tar")
            .comment("a comment")
            .extra(vec![7u8; 300])
            .mtime(1_700_000_000)
            .write(Vec::new(), Compression::default());
        e.write_all(&text[..100_000]).unwrap();
        cases.push((text[..100_000].to_vec(), e.finish().unwrap()));
        // Concatenated members, including an empty one.
        let mut multi = gzip(&text[..200_000], 6);
        multi.extend(gzip(&[], 6));
        multi.extend(gzip(&random[..50_000], 6));
        let mut whole = text[..200_000].to_vec();
        whole.extend_from_slice(&random[..50_000]);
        cases.push((whole, multi));
        for (i, (plain, packed)) in cases.iter().enumerate() {
            assert_eq!(&reference(packed).unwrap(), plain, "reference, case {i}");
            for step in [1, 511, 512, 65_536, 1 << 20] {
                if step == 1 && plain.len() > 200_000 {
                    continue;
                }
                let got = gunzip(packed, step).unwrap_or_else(|e| panic!("case {i}: {e}"));
                assert!(got == *plain, "case {i}, reads of {step}: output differs");
            }
        }
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let mut rng = Rng(42);
        let plain = compressible(40_000, &mut rng);
        let packed = gzip(&plain, 6);
        for cut in 0..packed.len() {
            let r = gunzip(&packed[..cut], 4096);
            assert!(r.is_err(), "cut at {cut} of {} was accepted", packed.len());
        }
        // A truncated second member, too.
        let mut two = packed.clone();
        two.extend(gzip(b"second member", 6));
        for cut in packed.len() + 1..two.len() {
            assert!(gunzip(&two[..cut], 4096).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn corruption_is_an_error_or_changes_nothing() {
        let mut rng = Rng(7);
        let plain = compressible(20_000, &mut rng);
        let packed = gzip(&plain, 6);
        for at in 0..packed.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut bad = packed.clone();
                bad[at] ^= bit;
                // Bits of the header's mtime, XFL and OS bytes change
                // nothing; anything else must be refused. Never output
                // other than the original.
                if let Ok(out) = gunzip(&bad, 8192) {
                    assert!(
                        out == plain,
                        "flip {bit:#x} at {at}: different bytes accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn random_damage_never_yields_other_bytes() {
        // A mutation fuzzer in miniature: overwrite one to four random
        // bytes of a multi-block stream, sometimes cut it short too.
        let mut rng = Rng(0xdead_beef);
        let mut plain = compressible(150_000, &mut rng);
        plain.extend(rng.bytes(50_000));
        let packed = gzip(&plain, 6);
        for round in 0..1500 {
            let mut bad = packed.clone();
            for _ in 0..=(rng.next() % 4) {
                let at = (rng.next() % bad.len() as u64) as usize;
                bad[at] = rng.next() as u8;
            }
            if round % 5 == 0 {
                bad.truncate((rng.next() % bad.len() as u64) as usize);
            }
            if let Ok(out) = gunzip(&bad, 65_536) {
                assert!(out == plain, "round {round}: different bytes accepted");
            }
        }
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        let mut rng = Rng(1234);
        for len in [1, 2, 9, 10, 18, 100, 4096, 200_000] {
            let junk = rng.bytes(len);
            assert!(gunzip(&junk, 4096).is_err(), "{len} random bytes accepted");
            let mut headed = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            headed.extend(&junk);
            assert!(
                gunzip(&headed, 4096).is_err(),
                "header + {len} random bytes"
            );
        }
        let mut padded = gzip(b"data", 6);
        padded.extend([0u8; 512]);
        assert!(
            gunzip(&padded, 4096).is_err(),
            "zero padding after the member"
        );
        assert!(reference(&padded).is_err(), "flate2 refuses it too");
    }

    #[cfg(feature = "isal")]
    #[test]
    fn errors_stick() {
        let packed = gzip(&[5u8; 100_000], 6);
        let mut r = decoder(Box::new(&packed[..packed.len() / 2]));
        let mut sink = Vec::new();
        assert!(r.read_to_end(&mut sink).is_err());
        let mut buf = [0u8; 16];
        assert!(r.read(&mut buf).is_err());
    }
}
