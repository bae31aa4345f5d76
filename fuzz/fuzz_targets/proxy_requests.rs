#![no_main]
//! Fuzzes `taojie::fuzzing::proxy_requests`; see that function for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taojie::fuzzing::proxy_requests(data));
