#![no_main]
// PLACEHOLDER: replaced by the real target before this branch merges.
use libfuzzer_sys::fuzz_target;
fuzz_target!(|_data: &[u8]| {});
