//! Fuzzes the `.pt` reader of `specnorm inspect` and `bake`.

#![no_main]

#[path = "read_as.rs"]
mod read_as;

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_as::read_as("pt", data));
