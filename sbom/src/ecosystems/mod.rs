//! One parser per package format. Each is a pure function over bytes the
//! caller has already read, of the one signature [`Parser`]:
//! `parse_with_warnings(path, bytes, distro, warnings)`, where `path` is
//! the file's path inside the image (it becomes [`crate::Package::location`]
//! and names the file in errors), `distro` qualifies OS package purls and
//! `warnings` gets the records it had to skip inside an otherwise readable
//! file. [`packages`] runs one and drops the warnings.
//!
//! No parser panics on any input, and each bounds its work (sizes,
//! counts, decompression) with the limits documented in its module.

pub mod apk;
pub mod binary;
pub mod dpkg;
pub mod golang;
pub mod java;
pub mod npm;
pub mod python;
pub mod rpm;
pub mod rust;

use crate::package::{Distro, Package};
use crate::ParseError;

/// What every parser is: `(path, bytes, distro, warnings)` to the packages
/// found, or an error for a file it cannot read at all.
pub type Parser =
    fn(&str, &[u8], &Distro, &mut Vec<ParseError>) -> Result<Vec<Package>, ParseError>;

/// Runs `parser` on one file and drops its warnings.
pub fn packages(
    parser: Parser,
    path: &str,
    bytes: &[u8],
    distro: &Distro,
) -> Result<Vec<Package>, ParseError> {
    parser(path, bytes, distro, &mut Vec::new())
}

#[cfg(test)]
pub(crate) mod fuzz {
    //! Deterministic mutation testing: truncations, bit flips, byte
    //! overwrites, spliced and zeroed ranges of a valid fixture.

    /// A small xorshift generator, so that failures reproduce.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    /// Calls `f` on `count` mutated copies of `fixture` (and on the
    /// fixture itself and the empty input).
    pub(crate) fn mutations(fixture: &[u8], count: usize, mut f: impl FnMut(&[u8])) {
        f(fixture);
        f(&[]);
        let mut rng = Rng::new(fixture.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
        for i in 0..count {
            let mut m = fixture.to_vec();
            match i % 6 {
                0 => {
                    // Truncations, spread over the whole length.
                    let cut = fixture.len() * (i / 6) / (count / 6).max(1);
                    m.truncate(cut.min(fixture.len()));
                }
                1 => {
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(m.len());
                        if let Some(b) = m.get_mut(at) {
                            *b ^= 1 << rng.below(8);
                        }
                    }
                }
                2 => {
                    let at = rng.below(m.len());
                    let special = [0x00, 0xff, 0x7f, 0x80, b'\n', b':', b'"', b'\t'];
                    for k in 0..=rng.below(8) {
                        if let Some(b) = m.get_mut(at + k) {
                            *b = special[rng.below(special.len())];
                        }
                    }
                }
                3 => {
                    // Zero a range.
                    let at = rng.below(m.len());
                    let len = rng.below(64);
                    for b in m.iter_mut().skip(at).take(len) {
                        *b = 0;
                    }
                }
                4 => {
                    // Duplicate a chunk somewhere else.
                    let from = rng.below(m.len());
                    let len = rng.below(128).min(m.len() - from.min(m.len()));
                    let chunk: Vec<u8> = m[from..from + len].to_vec();
                    let at = rng.below(m.len());
                    m.splice(at..at, chunk);
                }
                _ => {
                    // Large integers in likely length or offset fields.
                    let at = rng.below(m.len());
                    let v = [0xffu8, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xfe];
                    for (k, b) in v.iter().enumerate().take(rng.below(8) + 1) {
                        if let Some(x) = m.get_mut(at + k) {
                            *x = *b;
                        }
                    }
                }
            }
            f(&m);
        }
    }
}
