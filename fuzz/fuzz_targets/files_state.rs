#![no_main]
//! Fuzzes `taojie::fuzzing::files_state`; see that function for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taojie::fuzzing::files_state(data));
