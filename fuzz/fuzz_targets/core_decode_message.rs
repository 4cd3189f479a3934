#![no_main]
// Arbitrary bytes into the message decoder, and whatever decodes into a node's `step`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_core::testing::fuzz_decode_message(data);
});
