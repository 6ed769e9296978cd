#![no_main]
// The harness is shared with the stable regression test: see colbert_plaid::fuzzing::segment.
libfuzzer_sys::fuzz_target!(|data: &[u8]| colbert_plaid::fuzzing::segment(data));
