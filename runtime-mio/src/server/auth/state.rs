//! The auth part of the loop: tokens, the bcrypt worker, and the calls waiting on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;
use tally_kvstore::proto::{AuthUserAddRequest, AuthUserChangePasswordRequest, RequestHeader};
use tally_kvstore::{ApplyResponse, AuthStore, KvError};

use super::jwt::JwtTokens;
use super::tokens::SimpleTokens;
use super::worker::BcryptWorker;
use crate::client::{CallId, Status};
use crate::server::error::ServerError;
use crate::server::rpc::status::status_from_kv;

/// Calls waiting for the bcrypt worker or for their `Authenticate` to apply, at most; one more
/// is refused with "too many requests".
const PENDING_MAX: usize = 1024;

/// What a password hash is for, once the worker has made it.
#[derive(Debug)]
pub(super) enum HashFor {
    UserAdd(AuthUserAddRequest),
    ChangePassword(AuthUserChangePasswordRequest),
}

/// A call waiting for the bcrypt worker.
#[derive(Debug)]
pub(super) enum Waiting {
    /// Its password's hash, then its proposal as `caller`.
    Hash {
        call: CallId,
        then: HashFor,
        caller: Option<RequestHeader>,
    },
    /// `Authenticate`: whether the password matches `name`'s hash.
    Verify { call: CallId, name: String },
}

/// Tokens, the bcrypt worker, and the calls waiting on either.
#[derive(Debug)]
pub(in crate::server) struct Auth {
    pub(super) tokens: SimpleTokens,
    /// `--auth-token jwt,...`: signed tokens instead of simple ones.
    pub(super) jwt: Option<JwtTokens>,
    pub(super) worker: BcryptWorker,
    pub(super) bcrypt_cost: u32,
    /// Calls waiting for the worker, by job id.
    pub(super) waiting: HashMap<u64, Waiting>,
    /// `Authenticate` proposals by request id: the call and the token it will get.
    pub(super) authenticating: HashMap<u64, (CallId, String)>,
    next_job: u64,
}

impl Auth {
    /// `auth_token` is `--auth-token`: `simple`, or `jwt,` and its options.
    pub(in crate::server) fn start(
        auth_token: &str,
        token_ttl: Duration,
        bcrypt_cost: u32,
        waker: Arc<Waker>,
    ) -> Result<Self, ServerError> {
        let jwt = match auth_token.strip_prefix("jwt,") {
            Some(options) => Some(
                JwtTokens::from_options(options)
                    .map_err(|e| ServerError::Settings(format!("--auth-token jwt: {e}")))?,
            ),
            None => None,
        };
        Ok(Auth {
            tokens: SimpleTokens::new(token_ttl),
            jwt,
            worker: BcryptWorker::spawn(waker)?,
            bcrypt_cost,
            waiting: HashMap::new(),
            authenticating: HashMap::new(),
            next_job: 0,
        })
    }

    /// Who a call is, from its `token`: nobody to check while authentication is off; with it
    /// on, the token's user at the store's auth revision; without a token, the common name of
    /// the client certificate its connection presented (`--client-cert-auth`), as etcd takes
    /// it; else the empty user (refused as etcd refuses it). An unknown or expired token is
    /// refused.
    pub(in crate::server) fn caller(
        &mut self,
        (token, certificate_name): (Option<&str>, Option<&str>),
        store: &AuthStore,
        now: Instant,
    ) -> Result<Option<RequestHeader>, Status> {
        if !store.enabled() {
            return Ok(None);
        }
        let Some(token) = token else {
            return Ok(Some(RequestHeader {
                username: certificate_name.unwrap_or_default().to_string(),
                auth_revision: certificate_name.map_or(0, |_| store.revision()),
            }));
        };
        let user = match &self.jwt {
            Some(jwt) => jwt.verify(token),
            None => self.tokens.user_of(token, now).map(str::to_string),
        };
        match user {
            Some(user) if store.has_user(&user) => Ok(Some(RequestHeader {
                username: user,
                auth_revision: store.revision(),
            })),
            _ => Err(status_from_kv(&KvError::InvalidAuthToken)),
        }
    }

    /// An entry applied: an `Authenticate` gives its token to every member, and turning
    /// authentication off forgets them all.
    pub(in crate::server) fn on_applied(
        &mut self,
        result: &Result<ApplyResponse, KvError>,
        store: &AuthStore,
    ) {
        if let Ok(ApplyResponse::Authenticated {
            name, token_hash, ..
        }) = result
            && !token_hash.is_empty()
        {
            self.tokens
                .insert(token_hash.clone(), name.clone(), Instant::now());
        }
        if let Ok(ApplyResponse::AuthUserInvalidated { name }) = result {
            // As etcd: a new password or a deleted user ends the user's tokens.
            self.tokens.forget_user(name);
        }
        if !store.enabled() {
            // Tokens are only given while authentication is on: any left were given before it
            // was turned off.
            self.tokens.clear();
        }
    }

    /// Forgets tokens that idled past their TTL.
    pub(in crate::server) fn on_tick(&mut self, now: Instant) {
        self.tokens.expire(now);
    }

    pub(super) fn next_job_id(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }

    pub(super) fn full(&self) -> bool {
        self.waiting.len() + self.authenticating.len() >= PENDING_MAX
    }
}
