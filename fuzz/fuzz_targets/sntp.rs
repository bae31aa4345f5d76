#![no_main]
//! Fuzzes `taojie::fuzzing::sntp`; see that function for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taojie::fuzzing::sntp(data));
