#![no_main]
// Arbitrary schedules (deliver, drop, duplicate, tick, persist, crash, restart, propose, read)
// against a 3-5 node cluster, with every Raft safety invariant checked after every step.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_core::testing::fuzz_schedule(data);
});
