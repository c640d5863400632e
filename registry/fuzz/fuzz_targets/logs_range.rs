//! Fuzzes `quayside::api::fuzzing::logs_range` (its doc says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| quayside::api::fuzzing::logs_range(data));
