//! The state of the Lock and Election services: this member's proposals with what follows
//! their apply, the waiting calls and the observers; and the context the services run on.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tally_kvstore::proto::{ResponseHeader, internal_request::Request};
use tally_kvstore::{ApplyOutcome, ApplyResponse};

use super::requests;
use crate::client::{CallId, Code as GrpcCode, Status};
use tally_kvstore::proto::RequestHeader;

use crate::server::calls::CallKind;
use crate::server::reads::Reads;
use crate::server::rpc::propose::Proposer;
use crate::server::rpc::respond::Respond;
use crate::server::rpc::status::{REQUEST_TIMEOUT, status_timeout};
use crate::server::waiters::WAITERS_MAX;

/// What one of this member's lock or election proposals is for, and what comes after its apply.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// A lease for a `Lock` given none.
    LockLease {
        name: Bytes,
    },
    /// `Mutex.Lock`'s transaction.
    LockTxn {
        key: Bytes,
        prefix: Bytes,
    },
    Unlock,
    /// A lease for a `Campaign` given none.
    CampaignLease {
        name: Bytes,
        value: Bytes,
    },
    /// `Election.Campaign`'s transaction.
    CampaignTxn {
        name: Bytes,
        key: Bytes,
        lease: i64,
        value: Bytes,
    },
    /// A campaign found its key with another value and proclaims its own.
    CampaignProclaim {
        granted: Granted,
        key: Bytes,
        prefix: Bytes,
    },
    Proclaim,
    Resign,
}

/// A proposal waiting for its apply.
#[derive(Debug)]
struct Pending {
    call: CallId,
    step: Step,
    deadline: Instant,
    /// Who the call is: its later steps are proposed (and checked at apply) as that user.
    caller: Option<RequestHeader>,
}

/// What a waiter is answered with once every key before its own is gone.
#[derive(Debug, Clone)]
pub(super) enum Granted {
    /// `Lock`: the key, if it still exists.
    Lock,
    /// `Campaign`: the leadership, with the header of its transaction.
    Campaign {
        name: Bytes,
        lease: i64,
        leader_revision: i64,
        header: Option<ResponseHeader>,
    },
}

/// A call waiting for the keys created before its own to be deleted.
#[derive(Debug)]
pub(super) struct Wait {
    pub(super) key: Bytes,
    pub(super) prefix: Bytes,
    /// Its own key's creation revision less one: keys created at or before it come first.
    pub(super) max_create_revision: i64,
    /// The key it waits on now, with that key's creation revision.
    pub(super) blocker: Option<(Bytes, i64)>,
    pub(super) granted: Granted,
}

/// An `Observe` stream: the leader it last sent.
#[derive(Debug)]
pub(super) struct Observer {
    pub(super) prefix: Bytes,
    /// Key, creation and modification revisions of the leader last sent.
    pub(super) sent: Option<(Bytes, i64, i64)>,
}

/// This member's lock and election calls in flight.
#[derive(Debug, Default)]
pub(in crate::server) struct Coordination {
    /// Proposals by request id: at most [`WAITERS_MAX`]; past it a call is refused.
    pending: HashMap<u64, Pending>,
    /// Waiting calls: at most one per open call, so at most `CALLS_MAX`.
    waits: HashMap<CallId, Wait>,
    /// Open `Observe` streams, at most `CALLS_MAX`.
    pub(super) observers: HashMap<CallId, Observer>,
    /// The store revision the waits and observers were last checked at.
    checked_revision: i64,
    /// Something was added since, to check even if the store did not change.
    pub(super) unchecked: bool,
}

/// What the Lock and Election services need: the write path, the reads (`Leader` is
/// linearizable), and the calls in flight.
pub(in crate::server) struct CoordinationService<'a> {
    pub(in crate::server) writes: Proposer<'a>,
    pub(in crate::server) reads: &'a mut Reads,
    pub(in crate::server) coordination: &'a mut Coordination,
}

impl Respond for CoordinationService<'_> {
    fn calls(&mut self) -> &mut crate::server::calls::Calls {
        self.writes.calls()
    }

    fn header(&self, revision: i64) -> ResponseHeader {
        self.writes.header(revision)
    }
}

/// etcd's answer for errors of its concurrency recipes: its lock and election servers return
/// them as plain Go errors, and their store errors as its in-process client gives them, which
/// gRPC sends as code Unknown with the error's message (`"etcdserver: requested lease not
/// found"`, `"election: not leader"`).
pub(super) fn status_recipe(message: &str) -> Status {
    Status::new(GrpcCode::Unknown, message)
}

impl CoordinationService<'_> {
    /// Proposes `request` for `call`, to continue with `step` once applied.
    pub(super) fn propose(&mut self, call: CallId, request: Request, step: Step) {
        if self.coordination.pending.len() >= WAITERS_MAX {
            return self.reply_error(call, crate::server::rpc::status::status_too_many_requests());
        }
        match self.writes.propose_for(request) {
            Ok(id) => {
                let deadline = Instant::now() + REQUEST_TIMEOUT;
                let caller = self.writes.caller.clone();
                self.coordination.pending.insert(
                    id,
                    Pending {
                        call,
                        step,
                        deadline,
                        caller,
                    },
                );
            }
            Err(refused) => self.reply_error(call, status_recipe(refused.message())),
        }
    }

    /// Proposes what nobody waits for: the clean-up of a call that ended.
    pub(super) fn propose_cleanup(&mut self, request: Request) {
        if let Err(e) = self.writes.propose_unwaited(request) {
            eprintln!("tallyd: could not propose a lock or election clean-up: {e:?}");
        }
    }

    /// An applied entry: if one of this member's lock or election steps proposed it, the next
    /// step. Any other (another member's proposal) is nobody's here.
    pub(in crate::server) fn on_applied(&mut self, outcome: ApplyOutcome) {
        // Nearly every applied entry is not a lock or election step: skip hashing its id.
        if self.coordination.pending.is_empty() {
            return;
        }
        let Some(pending) = self.coordination.pending.remove(&outcome.request_id()) else {
            return;
        };
        let open = self.writes.calls.is_open(pending.call);
        // The next step goes as the call's user, checked against the auth store as it is now.
        let revision = self.writes.kv.auth().revision();
        self.writes.caller = pending.caller.map(|who| RequestHeader {
            auth_revision: revision,
            ..who
        });
        match outcome.into_result() {
            Ok(response) if open => self.next_step(pending.call, pending.step, response),
            Ok(response) => self.abandon(pending.step, response),
            Err(error) => self.reply_error(pending.call, status_recipe(error.etcd_message())),
        }
    }

    fn next_step(&mut self, call: CallId, step: Step, response: ApplyResponse) {
        match (step, response) {
            (Step::LockLease { name }, ApplyResponse::LeaseGrant(granted)) => {
                self.lock_with_lease(call, name, granted.id)
            }
            (Step::LockTxn { key, prefix }, ApplyResponse::Txn(txn)) => {
                self.on_lock_txn(call, key, prefix, txn)
            }
            (Step::Unlock, ApplyResponse::DeleteRange(deleted)) => {
                self.on_unlocked(call, deleted.header)
            }
            (Step::CampaignLease { name, value }, ApplyResponse::LeaseGrant(granted)) => {
                self.campaign_with_lease(call, name, granted.id, value)
            }
            (
                Step::CampaignTxn {
                    name,
                    key,
                    lease,
                    value,
                },
                ApplyResponse::Txn(txn),
            ) => self.on_campaign_txn(call, (name, key, lease, value), txn),
            (
                Step::CampaignProclaim {
                    granted,
                    key,
                    prefix,
                },
                ApplyResponse::Txn(txn),
            ) => self.on_campaign_proclaimed(call, granted, key, prefix, txn),
            (Step::Proclaim, ApplyResponse::Txn(txn)) => self.on_proclaimed(call, txn),
            (Step::Resign, ApplyResponse::Txn(txn)) => self.on_resigned(call, txn.header),
            (step, response) => {
                eprintln!("tallyd: {step:?} applied as {response:?}; the call fails");
                self.reply_error(call, status_recipe("etcdserver: unexpected apply"));
            }
        }
    }

    /// A step applied after its call ended: what it took is let go of, as the call would
    /// have on ending while it waited.
    fn abandon(&mut self, step: Step, response: ApplyResponse) {
        let ApplyResponse::Txn(txn) = response else {
            return;
        };
        match step {
            Step::LockTxn { key, .. } if txn.succeeded => {
                self.propose_cleanup(Request::DeleteRange(requests::delete(&key)));
            }
            Step::CampaignTxn { key, .. } if txn.succeeded => {
                let revision = txn.header.map_or(0, |h| h.revision);
                self.propose_cleanup(Request::Txn(requests::resign(&key, revision)));
            }
            _ => {}
        }
    }

    /// Starts waiting: answered now if nothing comes before it, else on a later turn.
    pub(super) fn wait(&mut self, call: CallId, wait: Wait) {
        self.coordination.waits.insert(call, wait);
        self.coordination.unchecked = true;
        self.check_wait(call);
    }

    /// After a turn's applies: every waiter and observer, if the store changed.
    pub(in crate::server) fn after_apply(&mut self) {
        let revision = self.writes.kv.revision();
        if revision == self.coordination.checked_revision && !self.coordination.unchecked {
            return;
        }
        self.coordination.checked_revision = revision;
        self.coordination.unchecked = false;
        let waiting: Vec<CallId> = self.coordination.waits.keys().copied().collect();
        for call in waiting {
            self.check_wait(call);
        }
        let observing: Vec<CallId> = self.coordination.observers.keys().copied().collect();
        for call in observing {
            self.check_observer(call);
        }
    }

    /// Whether `call`'s wait is over, by its blocker first (one lookup), then by the keys
    /// before it.
    fn check_wait(&mut self, call: CallId) {
        let Some(wait) = self.coordination.waits.get_mut(&call) else {
            return;
        };
        let kv = &*self.writes.kv;
        if let Some((key, created)) = &wait.blocker {
            match requests::current(kv, key) {
                Ok(Some(pair)) if pair.create_revision == *created => return,
                Ok(_) => wait.blocker = None,
                Err(e) => return eprintln!("tallyd: lock wait: {e}"),
            }
        }
        match requests::blocking(kv, &wait.prefix, wait.max_create_revision) {
            Ok(Some(pair)) => {
                wait.blocker = Some((pair.key, pair.create_revision));
                return;
            }
            Ok(None) => {}
            Err(e) => return eprintln!("tallyd: lock wait: {e}"),
        }
        let wait = self.coordination.waits.remove(&call).expect("found above");
        self.grant(call, wait);
    }

    /// A call ended: what it waited for, or observed, is let go of.
    pub(in crate::server) fn on_call_ended(&mut self, call: CallId, kind: CallKind) {
        if kind == CallKind::ElectionObserve {
            self.coordination.observers.remove(&call);
            return;
        }
        let Some(wait) = self.coordination.waits.remove(&call) else {
            return;
        };
        match wait.granted {
            Granted::Lock => {
                self.propose_cleanup(Request::DeleteRange(requests::delete(&wait.key)))
            }
            Granted::Campaign {
                leader_revision, ..
            } => self.propose_cleanup(Request::Txn(requests::resign(&wait.key, leader_revision))),
        }
    }

    /// Proposals whose apply did not come in time: their calls get etcd's timeout.
    pub(in crate::server) fn expire(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .coordination
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(pending) = self.coordination.pending.remove(&id) {
                self.reply_error(pending.call, status_recipe(status_timeout().message()));
            }
        }
    }
}
