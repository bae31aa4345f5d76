#![no_main]
//! Fuzzes `taojie::fuzzing::http`; see that function for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taojie::fuzzing::http(data));
