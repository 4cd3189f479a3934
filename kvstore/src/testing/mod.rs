//! Test support: the naive model, the operation language and the fuzz driver.
//!
//! Enabled by `cfg(test)` or the `testing` feature.

mod auth;
mod driver;
mod model;
mod ops;

pub use auth::fuzz_auth_requests;
pub use driver::Harness;
pub use model::{Model, ModelRange, ModelWrite};
pub use ops::{EndKind, LEASE_SLOTS, Op, TxnOp, key, key_range, lease_id, ops_from_bytes};

/// The fuzz target's body: decodes `data` into operations, runs them against the store and the
/// model, and panics on the first difference.
pub fn fuzz_requests(data: &[u8]) {
    let ops = ops_from_bytes(data);
    let mut h = Harness::new();
    if let Err(e) = h.run(&ops) {
        panic!("kvstore diverged from the model: {e}");
    }
}
