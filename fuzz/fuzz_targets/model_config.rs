#![no_main]
// The harness is shared with the stable regression test: see colbert_encode::fuzzing::model_config.
libfuzzer_sys::fuzz_target!(|data: &[u8]| colbert_encode::fuzzing::model_config(data));
