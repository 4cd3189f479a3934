//! The leader revokes the leases its lessor finds expired, a bounded number per tick, each
//! proposed once until its revoke applies or times out.

use std::collections::HashMap;
use std::time::Instant;

use tally_kvstore::proto::{LeaseRevokeRequest, internal_request::Request};

use super::request_ids::Clock;
use super::rpc::{Proposer, REQUEST_TIMEOUT};

/// Expired leases revoked per tick: 2,560/s at the default 100 ms heartbeat, where etcd revokes
/// at most 1,000/s. Each revoke is one small entry; the bound keeps an expiry storm from
/// crowding clients' writes out of any one loop turn.
pub(super) const LEASE_REVOKES_PER_TICK_MAX: usize = 256;

/// Revokes proposed and not yet applied (or timed out): at most
/// [`LEASE_REVOKES_PER_TICK_MAX`] per tick for [`REQUEST_TIMEOUT`].
#[derive(Debug, Default)]
pub(super) struct LeaseExpiry {
    proposed_at: HashMap<i64, Instant>,
}

impl LeaseExpiry {
    /// On the leader, each tick: proposes the revoke of leases that expired.
    /// `applied` is the last index applied completely.
    pub(super) fn revoke_expired(
        &mut self,
        writes: &mut Proposer<'_>,
        clock: Clock,
        now: Instant,
        applied: u64,
    ) {
        if applied < writes.node.status().commit() {
            // A committed keep-alive not applied yet may renew a lease that looks expired:
            // decide once the store has caught up with the log.
            return;
        }
        self.proposed_at
            .retain(|_, since| now.duration_since(*since) < REQUEST_TIMEOUT);
        let expired = writes
            .kv
            .expired_leases(clock.now_ms(), LEASE_REVOKES_PER_TICK_MAX);
        for id in expired {
            if self.proposed_at.contains_key(&id) {
                continue;
            }
            self.proposed_at.insert(id, now);
            let revoke = Request::LeaseRevoke(LeaseRevokeRequest { id });
            if writes.propose_unwaited(revoke).is_err() {
                self.proposed_at.remove(&id);
            }
        }
    }
}
