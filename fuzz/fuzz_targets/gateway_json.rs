#![no_main]
//! Arbitrary bytes as the JSON gateway's request bodies and as wire bytes to write as JSON
//! (`tally_runtime_mio::server::fuzz_gateway_json`): no panic, and each direction takes back
//! what the other gives.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_runtime_mio::server::fuzz_gateway_json(data);
});
