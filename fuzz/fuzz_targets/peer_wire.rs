#![no_main]
// Arbitrary bytes on the peer port: frame splitting and the hello/ack handshake decoders
// (`tally_runtime_mio::peer::fuzz_peer_wire`) must never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_runtime_mio::peer::fuzz_peer_wire(data);
});
