#![no_main]
//! Applies arbitrary request sequences to tally-kvstore and checks every answer, watch event and
//! snapshot against the naive model (`tally_kvstore::testing`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tally_kvstore::testing::fuzz_requests(data);
});
