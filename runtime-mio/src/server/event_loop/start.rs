//! Building the loop's parts from what the data directory recovered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};
use tally_core::NO_NODE;

use super::{CLIENT_TOKENS, METRICS_TOKENS, PEER_TOKENS, Server, WAKER};
use crate::server::apply_queue::ApplyQueue;
use crate::server::auth::Auth;
use crate::server::auto_compaction::AutoCompactor;
use crate::server::calls::Calls;
use crate::server::error::{ServerError, io_error};
use crate::server::flags::Flags;
use crate::server::heap_trim::HeapTrimmer;
use crate::server::identity::Identity;
use crate::server::metrics::Metrics;
use crate::server::persistence::Persistence;
use crate::server::request_ids::{Clock, RequestIds};
use crate::server::rpc::Quota;
use crate::server::snapshots::Snapshots;
use crate::server::standing::Standing;
use crate::server::start_check::{Start, StartCheck};
use crate::server::startup::Recovered;
use crate::wal::WalThread;

/// How often watchers that asked for progress notifications get one.
pub(super) const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(60);
/// Election timeouts without a leader after which a member dials every peer (`standing`).
const PROBE_PEERS_AFTER_ELECTIONS: u32 = 3;
/// Ticks a removed member keeps running before it stops (etcd's stopWithDelay of 10 ticks).
const REMOVED_STOP_TICKS: u32 = 10;

impl Server {
    pub(super) fn start(
        flags: Flags,
        identity: Identity,
        recovered: Recovered,
    ) -> Result<Server, ServerError> {
        let Recovered {
            mut node,
            kv,
            members,
            opened,
            joined,
            bootstraps,
        } = recovered;
        let poll = Poll::new().map_err(io_error("create poll"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_error("create waker"))?);
        let wal_waker = Arc::clone(&waker);
        let (wal, wal_done) = WalThread::spawn(
            opened.wal,
            Box::new(move || {
                let _ = wal_waker.wake();
            }),
        )
        .map_err(|e| ServerError::WalFailed(e.to_string()))?;
        let snapshots = Snapshots::start(opened.snapshots, Arc::clone(&waker))?;
        let heap_trim = HeapTrimmer::spawn()?;
        // Reading the snapshot back left its buffers freed.
        heap_trim.request();
        let auth = Auth::start(
            flags.auth_token(),
            flags.auth_token_ttl(),
            flags.bcrypt_cost(),
            Arc::clone(&waker),
        )?;
        let now = Instant::now();
        let (peers, clients, metrics_http) = crate::server::transports::start(
            &flags,
            &identity,
            &members,
            poll.registry(),
            waker,
            (PEER_TOKENS, CLIENT_TOKENS, METRICS_TOKENS),
        )?;
        crate::server::members::log_fault_tolerance(node.status().conf().voters().len());
        let auto_compactor = AutoCompactor::new(flags.auto_compaction(), now, kv.revision());
        let others: Vec<u64> = members
            .ids()
            .filter(|id| *id != identity.member_id)
            .collect();
        // A joining member has nothing its peers could find wrong.
        let start = if bootstraps {
            Some(Start::Bootstrap)
        } else {
            opened.recovered.as_ref().map(|_| {
                let status = node.status();
                Start::Restart {
                    last_index: status.last_index(),
                    term: status.term(),
                }
            })
        };
        let start_check = start
            .filter(|_| !others.is_empty())
            .map(|start| StartCheck::new(identity.member_id, start, others, now));
        let tick_interval = Duration::from_millis(flags.heartbeat_interval_ms());
        let standing = Standing::new(
            joined,
            start_check,
            now,
            Duration::from_millis(flags.election_timeout_ms()) * PROBE_PEERS_AFTER_ELECTIONS,
            tick_interval * REMOVED_STOP_TICKS,
        );
        // The recovered snapshot came from its file: keep it there, not in memory too.
        let recovered_snapshot = node.status().snapshot_index();
        if recovered_snapshot > 0 {
            let released = node.release_snapshot_data(recovered_snapshot);
            assert!(released, "the recovered snapshot is the core's latest");
        }
        let applying = ApplyQueue::new(node.status().applied());
        Ok(Server {
            poll,
            applying,
            node,
            kv,
            members,
            persistence: Persistence::new(wal, wal_done),
            snapshots,
            heap_trim,
            peers,
            calls: Calls::new(clients),
            metrics_http,
            waiters: Default::default(),
            reads: Default::default(),
            sliced_ranges: Default::default(),
            conf_waiters: Default::default(),
            leader_queries: Default::default(),
            watch_streams: Default::default(),
            lease_expiry: Default::default(),
            coordination: Default::default(),
            auth,
            caller: None,
            auto_compactor,
            ids: RequestIds::starting_now(identity.member_id),
            clock: Clock::starting_at(now),
            quota: Quota::new(flags.quota_backend_bytes()),
            standing,
            leader: NO_NODE,
            attributes_published: false,
            metrics: Metrics::starting_now(),
            tick_interval,
            next_tick: now + tick_interval,
            next_progress_notify: now + PROGRESS_NOTIFY_INTERVAL,
            slow_turns: Default::default(),
            flags,
            identity,
        })
    }
}
