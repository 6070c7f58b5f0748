#![no_main]

use guestwire::fuzzing::{ChunkedInput, chunked};

libfuzzer_sys::fuzz_target!(|input: ChunkedInput| chunked(input));
