//! The Auth service's calls: management goes through the log with the caller's header (and
//! is checked there: only `root` manages once authentication is on); `UserAdd` and
//! `UserChangePassword` hash first, `Authenticate` checks the password first, on the worker.

use tally_kvstore::proto::{
    self, AuthenticateRequest, AuthenticateResponse, internal_request::Request,
};
use tally_kvstore::{ApplyOutcome, ApplyResponse, KvError};

use super::state::{Auth, HashFor, Waiting};
use super::tokens::token_hash;
use super::worker::{Done, Job};
use crate::client::CallId;
use crate::server::rpc::propose::Proposer;
use crate::server::rpc::respond::Respond;
use crate::server::rpc::status::{status_from_kv, status_too_many_requests};

/// What the Auth service needs: the write path (with the caller) and the auth part.
pub(in crate::server) struct AuthService<'a> {
    pub(in crate::server) writes: Proposer<'a>,
    pub(in crate::server) auth: &'a mut Auth,
}

impl Respond for AuthService<'_> {
    fn calls(&mut self) -> &mut crate::server::calls::Calls {
        self.writes.calls()
    }

    fn header(&self, revision: i64) -> proto::ResponseHeader {
        self.writes.header(revision)
    }
}

impl AuthService<'_> {
    /// A management call that goes through the log as it came.
    pub(in crate::server) fn manage(&mut self, call: CallId, request: Request) {
        self.writes.propose_kv(call, request);
    }

    pub(in crate::server) fn authenticate(&mut self, call: CallId, request: AuthenticateRequest) {
        let store = self.writes.kv.auth();
        if !store.enabled() {
            return self.reply_error(call, status_from_kv(&KvError::AuthNotEnabled));
        }
        let Some(hash) = store.password_hash(&request.name).map(str::to_string) else {
            return self.reply_error(call, status_from_kv(&KvError::AuthFailed));
        };
        let id = self.auth.next_job_id();
        let job = Job::Verify {
            id,
            password: request.password,
            hash,
        };
        let waiting = Waiting::Verify {
            call,
            name: request.name,
        };
        self.submit(call, id, job, waiting);
    }

    pub(in crate::server) fn user_add(&mut self, call: CallId, request: proto::AuthUserAddRequest) {
        if request.options.is_some_and(|o| o.no_password) {
            let request = proto::AuthUserAddRequest {
                password: String::new(),
                hashed_password: String::new(),
                ..request
            };
            return self.manage(call, Request::AuthUserAdd(request));
        }
        let id = self.auth.next_job_id();
        let job = Job::Hash {
            id,
            password: request.password.clone(),
            cost: self.auth.bcrypt_cost,
        };
        let then = HashFor::UserAdd(proto::AuthUserAddRequest {
            password: String::new(),
            ..request
        });
        self.hash_then(call, id, job, then);
    }

    pub(in crate::server) fn user_change_password(
        &mut self,
        call: CallId,
        request: proto::AuthUserChangePasswordRequest,
    ) {
        let id = self.auth.next_job_id();
        let job = Job::Hash {
            id,
            password: request.password.clone(),
            cost: self.auth.bcrypt_cost,
        };
        let then = HashFor::ChangePassword(proto::AuthUserChangePasswordRequest {
            password: String::new(),
            ..request
        });
        self.hash_then(call, id, job, then);
    }

    fn hash_then(&mut self, call: CallId, id: u64, job: Job, then: HashFor) {
        let waiting = Waiting::Hash {
            call,
            then,
            caller: self.writes.caller.clone(),
        };
        self.submit(call, id, job, waiting);
    }

    fn submit(&mut self, call: CallId, id: u64, job: Job, waiting: Waiting) {
        if self.auth.full() || self.auth.worker.submit(job).is_err() {
            return self.reply_error(call, status_too_many_requests());
        }
        self.auth.waiting.insert(id, waiting);
    }

    /// The worker's results: the proposals they were waiting for.
    pub(in crate::server) fn drain_worker(&mut self) {
        while let Some(done) = self.auth.worker.poll() {
            match done {
                Done::Hashed { id, hash } => {
                    let Some(Waiting::Hash { call, then, caller }) = self.auth.waiting.remove(&id)
                    else {
                        continue;
                    };
                    let Ok(hash) = hash else {
                        self.reply_error(call, status_from_kv(&KvError::AuthFailed));
                        continue;
                    };
                    let request = match then {
                        HashFor::UserAdd(add) => Request::AuthUserAdd(proto::AuthUserAddRequest {
                            hashed_password: hash,
                            ..add
                        }),
                        HashFor::ChangePassword(change) => {
                            Request::AuthUserChangePassword(proto::AuthUserChangePasswordRequest {
                                hashed_password: hash,
                                ..change
                            })
                        }
                    };
                    // Proposed as the call it came with.
                    self.writes.caller = caller;
                    self.writes.propose_kv(call, request);
                }
                Done::Verified { id, matches } => {
                    let Some(Waiting::Verify { call, name }) = self.auth.waiting.remove(&id) else {
                        continue;
                    };
                    if !matches {
                        self.reply_error(call, status_from_kv(&KvError::AuthFailed));
                        continue;
                    }
                    let token = self.auth.tokens.generate();
                    let request = Request::Authenticate(AuthenticateRequest {
                        name,
                        password: String::new(),
                        token_hash: token_hash(&token),
                    });
                    match self.writes.propose_for(request) {
                        Ok(request_id) => {
                            self.auth.authenticating.insert(request_id, (call, token));
                        }
                        Err(refused) => self.reply_error(call, refused),
                    }
                }
            }
        }
    }

    /// An applied entry: this member's `Authenticate` answers its call with the token; any
    /// other is handed back.
    pub(in crate::server) fn on_applied(&mut self, outcome: ApplyOutcome) -> Option<ApplyOutcome> {
        // Nearly every applied entry is not an authentication: skip hashing its id.
        if self.auth.authenticating.is_empty() {
            return Some(outcome);
        }
        let Some((call, token)) = self.auth.authenticating.remove(&outcome.request_id()) else {
            return Some(outcome);
        };
        match outcome.into_result() {
            Ok(ApplyResponse::Authenticated { name, revision, .. }) => {
                let token = match &self.auth.jwt {
                    Some(jwt) => jwt.sign(&name, revision),
                    None => token,
                };
                self.reply(
                    call,
                    AuthenticateResponse {
                        header: None,
                        token,
                    },
                )
            }
            Ok(other) => eprintln!("tallyd: Authenticate applied as {other:?}"),
            Err(error) => self.reply_error(call, status_from_kv(&error)),
        }
        None
    }
}
