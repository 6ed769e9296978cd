#![no_main]
// The harness is shared with the stable regression test: see colbert_encode::fuzzing::tokenize.
libfuzzer_sys::fuzz_target!(|data: &[u8]| colbert_encode::fuzzing::tokenize(data));
