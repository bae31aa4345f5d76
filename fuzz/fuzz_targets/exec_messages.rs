#![no_main]
//! Fuzzes `taojie::fuzzing::exec_messages`; see that function for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taojie::fuzzing::exec_messages(data));
