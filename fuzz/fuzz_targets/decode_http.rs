#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guestwire::fuzzing::decode_http(data));
