#![no_main]
//! Arbitrary bytes as an HPACK header block (decode, re-encode, decode again) and as the frames
//! a client sends, through the `:authority` filter in front of h2
//! (`tally_runtime_mio::client::fuzz_hpack`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_runtime_mio::client::fuzz_hpack(data);
});
