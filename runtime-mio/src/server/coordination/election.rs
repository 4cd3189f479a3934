//! The Election service: `Campaign` waits until the caller leads the election `name`,
//! `Proclaim` sets the leader's value, `Resign` gives the leadership up, `Leader` reads who
//! leads, and `Observe` streams each leader and value.

use bytes::Bytes;
use tally_kvstore::proto::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, LeaseGrantRequest,
    ProclaimRequest, ProclaimResponse, ResignRequest, ResignResponse, ResponseHeader, TxnResponse,
    internal_request::Request, response_op::Response,
};

use super::lock::first_kv_create_revision;
use super::requests::{self, SESSION_TTL_SECONDS};
use super::service::{CoordinationService, Granted, Observer, Step, Wait, status_recipe};
use crate::client::{CallId, Status};
use crate::server::reads::{PendingRead, ReadKind};
use crate::server::rpc::respond::Respond;
use crate::server::rpc::status::{REQUEST_TIMEOUT, status_too_many_requests};

/// etcd's `ErrElectionNotLeader`.
const NOT_LEADER: &str = "election: not leader";
/// etcd's `ErrElectionNoLeader`.
const NO_LEADER: &str = "election: no leader";
/// etcd's `ErrMissingLeaderKey`.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

/// The leadership a campaign names: election, key, lease and the key's creation revision.
type Leadership = (Bytes, Bytes, i64, i64);

impl CoordinationService<'_> {
    pub(in crate::server) fn campaign(&mut self, call: CallId, request: CampaignRequest) {
        if request.lease == 0 {
            let id = (self.writes.ids.next() & 0x7fff_ffff_ffff_ffff) as i64;
            let grant = LeaseGrantRequest {
                ttl: SESSION_TTL_SECONDS,
                id,
            };
            let step = Step::CampaignLease {
                name: request.name,
                value: request.value,
            };
            return self.propose(call, Request::LeaseGrant(grant), step);
        }
        self.campaign_with_lease(call, request.name, request.lease, request.value);
    }

    pub(super) fn campaign_with_lease(
        &mut self,
        call: CallId,
        name: Bytes,
        lease: i64,
        value: Bytes,
    ) {
        let key = requests::key_of(&requests::prefix_of(&name), lease);
        let txn = requests::campaign(&key, value.clone(), lease);
        let step = Step::CampaignTxn {
            name,
            key,
            lease,
            value,
        };
        self.propose(call, Request::Txn(txn), step);
    }

    /// The campaign's transaction applied: its key is in the election; a key this lease had
    /// there already gets this campaign's value first; then the wait for the keys before it.
    pub(super) fn on_campaign_txn(
        &mut self,
        call: CallId,
        (name, key, lease, value): (Bytes, Bytes, i64, Bytes),
        txn: TxnResponse,
    ) {
        let prefix = requests::prefix_of(&name);
        let mut leader_revision = txn.header.as_ref().map_or(0, |h| h.revision);
        let header = txn.header.clone();
        let granted = |leader_revision| Granted::Campaign {
            name: name.clone(),
            lease,
            leader_revision,
            header: header.clone(),
        };
        if !txn.succeeded {
            leader_revision = first_kv_create_revision(&txn, 0);
            if first_kv_value(&txn) != Some(&value) {
                let proclaim = requests::proclaim(&key, leader_revision, value.clone(), lease);
                let step = Step::CampaignProclaim {
                    granted: granted(leader_revision),
                    key,
                    prefix,
                };
                return self.propose(call, Request::Txn(proclaim), step);
            }
        }
        self.wait_to_lead(call, key, prefix, granted(leader_revision));
    }

    /// The campaign's own proclamation applied: on to the wait, or, when the key was no
    /// longer this leadership, etcd's "not leader" after resigning.
    pub(super) fn on_campaign_proclaimed(
        &mut self,
        call: CallId,
        granted: Granted,
        key: Bytes,
        prefix: Bytes,
        txn: TxnResponse,
    ) {
        if !txn.succeeded {
            if let Granted::Campaign {
                leader_revision, ..
            } = granted
            {
                self.propose_cleanup(Request::Txn(requests::resign(&key, leader_revision)));
            }
            return self.reply_error(call, status_recipe(NOT_LEADER));
        }
        self.wait_to_lead(call, key, prefix, granted);
    }

    fn wait_to_lead(&mut self, call: CallId, key: Bytes, prefix: Bytes, granted: Granted) {
        let Granted::Campaign {
            leader_revision, ..
        } = &granted
        else {
            unreachable!("a campaign waits to lead");
        };
        let wait = Wait {
            key,
            prefix,
            max_create_revision: leader_revision - 1,
            blocker: None,
            granted,
        };
        self.wait(call, wait);
    }

    /// The keys before the campaign's are gone: it leads. etcd answers with the header of the
    /// campaign's transaction.
    pub(super) fn on_campaign_won(
        &mut self,
        call: CallId,
        (name, key, lease, rev): Leadership,
        header: Option<ResponseHeader>,
    ) {
        let leader = LeaderKey {
            name,
            key,
            rev,
            lease,
        };
        self.reply(
            call,
            CampaignResponse {
                header,
                leader: Some(leader),
            },
        );
    }

    pub(in crate::server) fn proclaim(&mut self, call: CallId, request: ProclaimRequest) {
        let Some(leader) = request.leader else {
            return self.reply_error(call, status_recipe(MISSING_LEADER_KEY));
        };
        let txn = requests::proclaim(&leader.key, leader.rev, request.value, leader.lease);
        self.propose(call, Request::Txn(txn), Step::Proclaim);
    }

    pub(super) fn on_proclaimed(&mut self, call: CallId, txn: TxnResponse) {
        if !txn.succeeded {
            return self.reply_error(call, status_recipe(NOT_LEADER));
        }
        self.reply(call, ProclaimResponse { header: txn.header });
    }

    pub(in crate::server) fn resign(&mut self, call: CallId, request: ResignRequest) {
        let Some(leader) = request.leader else {
            return self.reply_error(call, status_recipe(MISSING_LEADER_KEY));
        };
        let txn = requests::resign(&leader.key, leader.rev);
        self.propose(call, Request::Txn(txn), Step::Resign);
    }

    pub(super) fn on_resigned(&mut self, call: CallId, header: Option<ResponseHeader>) {
        self.reply(call, ResignResponse { header });
    }

    /// `Leader`: a linearizable read of the key created first.
    pub(in crate::server) fn leader(&mut self, call: CallId, request: LeaderRequest) {
        let pending = PendingRead {
            call,
            read: ReadKind::ElectionLeader(requests::prefix_of(&request.name)),
            deadline: std::time::Instant::now() + REQUEST_TIMEOUT,
        };
        if self.reads.push(pending).is_err() {
            self.reply_error(call, status_too_many_requests());
        }
    }

    /// `Observe`: the leader now, then each change.
    pub(in crate::server) fn observe(&mut self, call: CallId, request: LeaderRequest) {
        let observer = Observer {
            prefix: requests::prefix_of(&request.name),
            sent: None,
        };
        self.coordination.observers.insert(call, observer);
        self.coordination.unchecked = true;
        self.check_observer(call);
    }

    /// Sends `call`'s observer the leader, if it changed or proclaimed since the last one sent.
    pub(super) fn check_observer(&mut self, call: CallId) {
        let Some(observer) = self.coordination.observers.get_mut(&call) else {
            return;
        };
        let kv = &*self.writes.kv;
        let current = match &observer.sent {
            Some((key, created, _)) => match requests::current(kv, key) {
                Ok(Some(pair)) if pair.create_revision == *created => Some(pair),
                Ok(_) => None,
                Err(_) => return,
            },
            None => None,
        };
        let leader = match current {
            Some(pair) => pair,
            None => match requests::current_leader(kv, &observer.prefix) {
                Ok(Some(pair)) => pair,
                _ => {
                    observer.sent = None;
                    return;
                }
            },
        };
        let fresh = (
            leader.key.clone(),
            leader.create_revision,
            leader.mod_revision,
        );
        if observer.sent.as_ref() == Some(&fresh) {
            return;
        }
        observer.sent = Some(fresh);
        self.stream(
            call,
            LeaderResponse {
                header: None,
                kv: Some(leader),
            },
        );
    }
}

/// The answer to `Leader` from `kv`: the key created first under `prefix`, or etcd's "no
/// leader".
pub(in crate::server) fn leader_response(
    kv: &tally_kvstore::KvStore,
    prefix: &Bytes,
) -> Result<LeaderResponse, Status> {
    match requests::current_leader(kv, prefix) {
        Ok(Some(pair)) => Ok(LeaderResponse {
            header: None,
            kv: Some(pair),
        }),
        Ok(None) => Err(status_recipe(NO_LEADER)),
        Err(e) => Err(status_recipe(e.etcd_message())),
    }
}

/// The value of the first pair of the transaction's first range response.
fn first_kv_value(txn: &TxnResponse) -> Option<&Bytes> {
    match txn.responses.first().and_then(|op| op.response.as_ref()) {
        Some(Response::ResponseRange(range)) => range.kvs.first().map(|kv| &kv.value),
        _ => None,
    }
}
