#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| carbonx::fuzzing::gateway_session(data));
