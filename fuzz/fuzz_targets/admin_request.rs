#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| carbonx::fuzzing::admin_request(data));
