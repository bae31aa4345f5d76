#![no_main]
//! Fuzzes `taojie::fuzzing::files_web`; see that function for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taojie::fuzzing::files_web(data));
