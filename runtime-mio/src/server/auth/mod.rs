//! etcd's Auth service, and who a call is: the token a call carries (gRPC metadata `token`)
//! names its user, whose requests carry a header (user, auth revision) through the log, so
//! every member checks them against the same auth store at the same index
//! (`tally_kvstore::AuthStore`); reads and watches, which stay on the member, are checked
//! there.
//!
//! Passwords are hashed and checked with bcrypt on a thread of their own (`worker`): a hash
//! goes into the log, never the password. Tokens are etcd's simple tokens (`tokens`): the log
//! carries their SHA-256, each member keeps them for `--auth-token-ttl` after their last use.

mod jwt;
mod service;
mod state;
mod tokens;
mod worker;

pub(super) use service::AuthService;
pub(super) use state::Auth;
