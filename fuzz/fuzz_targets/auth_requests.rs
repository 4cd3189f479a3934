#![no_main]
//! Applies arbitrary sequences of auth requests to tally-kvstore's auth store: it must keep
//! etcd's rules, and each snapshot must read back to a store that decides the same.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tally_kvstore::testing::fuzz_auth_requests(data);
});
