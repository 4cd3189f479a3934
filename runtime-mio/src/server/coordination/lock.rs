//! The Lock service: `Lock` waits until the caller holds the lock `name`, `Unlock` deletes the
//! key that holds it.

use bytes::Bytes;
use tally_kvstore::proto::{
    LeaseGrantRequest, LockRequest, LockResponse, ResponseHeader, TxnResponse, UnlockRequest,
    UnlockResponse, internal_request::Request, response_op::Response,
};

use super::requests::{self, SESSION_TTL_SECONDS};
use super::service::{CoordinationService, Granted, Step, Wait, status_recipe};
use crate::client::CallId;
use crate::server::rpc::respond::Respond;

/// etcd's `ErrSessionExpired`: the waiter's own key went (its lease expired) while it waited.
const SESSION_EXPIRED: &str = "mutex: session is expired";

impl CoordinationService<'_> {
    pub(in crate::server) fn lock(&mut self, call: CallId, request: LockRequest) {
        if request.lease == 0 {
            // etcd's session grants a lease of its own when given none.
            let id = (self.writes.ids.next() & 0x7fff_ffff_ffff_ffff) as i64;
            let grant = LeaseGrantRequest {
                ttl: SESSION_TTL_SECONDS,
                id,
            };
            let step = Step::LockLease { name: request.name };
            return self.propose(call, Request::LeaseGrant(grant), step);
        }
        self.lock_with_lease(call, request.name, request.lease);
    }

    pub(super) fn lock_with_lease(&mut self, call: CallId, name: Bytes, lease: i64) {
        let prefix = requests::prefix_of(&name);
        let key = requests::key_of(&prefix, lease);
        let txn = requests::lock(&key, &prefix, lease);
        self.propose(call, Request::Txn(txn), Step::LockTxn { key, prefix });
    }

    /// The lock's transaction applied: held now if no key was created before this one, else
    /// the wait for them to go.
    pub(super) fn on_lock_txn(
        &mut self,
        call: CallId,
        key: Bytes,
        prefix: Bytes,
        txn: TxnResponse,
    ) {
        let own_revision = if txn.succeeded {
            txn.header.as_ref().map_or(0, |h| h.revision)
        } else {
            // This lease holds (or waits for) the lock already: its key as it was.
            first_kv_create_revision(&txn, 0)
        };
        let owner_revision = first_kv_create_revision(&txn, 1);
        if owner_revision == 0 || owner_revision == own_revision {
            return self.reply(
                call,
                LockResponse {
                    header: txn.header,
                    key,
                },
            );
        }
        let wait = Wait {
            key,
            prefix,
            max_create_revision: own_revision - 1,
            blocker: None,
            granted: Granted::Lock,
        };
        self.wait(call, wait);
    }

    /// Every key before the waiter's is gone: it holds the lock, if its own key still exists.
    pub(super) fn grant(&mut self, call: CallId, wait: Wait) {
        match wait.granted {
            Granted::Lock => match requests::current(self.writes.kv, &wait.key) {
                Ok(Some(_)) => self.reply(
                    call,
                    LockResponse {
                        header: None,
                        key: wait.key,
                    },
                ),
                Ok(None) => self.reply_error(call, status_recipe(SESSION_EXPIRED)),
                Err(e) => self.reply_error(call, status_recipe(e.etcd_message())),
            },
            Granted::Campaign {
                name,
                lease,
                leader_revision,
                header,
            } => self.on_campaign_won(call, (name, wait.key, lease, leader_revision), header),
        }
    }

    pub(in crate::server) fn unlock(&mut self, call: CallId, request: UnlockRequest) {
        let delete = requests::delete(&request.key);
        self.propose(call, Request::DeleteRange(delete), Step::Unlock);
    }

    pub(super) fn on_unlocked(&mut self, call: CallId, header: Option<ResponseHeader>) {
        self.reply(call, UnlockResponse { header });
    }
}

/// The creation revision of the first pair of the transaction's range response at `index`, or
/// 0 when there is none.
pub(super) fn first_kv_create_revision(txn: &TxnResponse, index: usize) -> i64 {
    match txn.responses.get(index).and_then(|op| op.response.as_ref()) {
        Some(Response::ResponseRange(range)) => {
            range.kvs.first().map_or(0, |kv| kv.create_revision)
        }
        _ => 0,
    }
}
