//! Fuzzes `quayside::api::fuzzing::content_range` (its doc says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| quayside::api::fuzzing::content_range(data));
