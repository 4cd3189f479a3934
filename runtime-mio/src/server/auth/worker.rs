//! bcrypt off the loop: hashing a password at etcd's default cost takes tens of milliseconds,
//! which on the loop thread would delay heartbeats. A thread of its own hashes and checks
//! passwords and reports back through the loop's waker.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use mio::Waker;

use crate::server::error::{ServerError, io_error};

/// Jobs queued at once; past it a call is refused with "too many requests".
const AUTH_JOBS_MAX: usize = 64;

/// A password to hash or to check. The password is dropped once the job is done.
#[derive(Debug)]
pub(super) enum Job {
    Hash {
        id: u64,
        password: String,
        cost: u32,
    },
    Verify {
        id: u64,
        password: String,
        hash: String,
    },
}

/// A job's result.
#[derive(Debug)]
pub(super) enum Done {
    Hashed {
        id: u64,
        hash: Result<String, String>,
    },
    Verified {
        id: u64,
        matches: bool,
    },
}

fn run(job: Job) -> Done {
    match job {
        Job::Hash { id, password, cost } => Done::Hashed {
            id,
            hash: bcrypt::hash(password, cost).map_err(|e| e.to_string()),
        },
        Job::Verify { id, password, hash } => Done::Verified {
            id,
            // An unreadable hash matches nothing.
            matches: bcrypt::verify(password, &hash).unwrap_or(false),
        },
    }
}

/// The thread and its queues.
#[derive(Debug)]
pub(super) struct BcryptWorker {
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
}

impl BcryptWorker {
    pub(super) fn spawn(waker: Arc<Waker>) -> Result<Self, ServerError> {
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(AUTH_JOBS_MAX);
        let (report, done) = std::sync::mpsc::sync_channel(AUTH_JOBS_MAX);
        std::thread::Builder::new()
            .name("tally-bcrypt".into())
            .spawn(move || {
                for job in inbox {
                    if report.send(run(job)).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })
            .map_err(io_error("spawn the bcrypt worker"))?;
        Ok(BcryptWorker { jobs, done })
    }

    /// Queues `job`; a full queue gives it back.
    pub(super) fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }

    #[must_use]
    pub(super) fn poll(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_check_the_password_they_were_made_from() {
        let Done::Hashed { hash, .. } = run(Job::Hash {
            id: 1,
            password: "secret".into(),
            cost: 4,
        }) else {
            panic!("a hash");
        };
        let hash = hash.expect("hashes");
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        let verify = |password: &str, hash: &str| match run(Job::Verify {
            id: 2,
            password: password.into(),
            hash: hash.into(),
        }) {
            Done::Verified { matches, .. } => matches,
            other => panic!("{other:?}"),
        };
        assert!(verify("secret", &hash));
        assert!(!verify("Secret", &hash));
        assert!(!verify("secret", "not a bcrypt hash"));
    }
}
