//! Counters and histograms for `/metrics` (Prometheus text format), and the plain-HTTP
//! endpoints etcd serves beside gRPC: `/health`, `/metrics` and `/version`.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use tally_core::{NO_NODE, Node};
use tally_kvstore::KvStore;

/// A fixed-bucket histogram of durations.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds_seconds: &'static [f64],
    counts: Vec<u64>,
    sum_seconds: f64,
    count: u64,
}

const DURATION_BOUNDS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds_seconds: DURATION_BOUNDS_SECONDS,
            counts: vec![0; DURATION_BOUNDS_SECONDS.len()],
            sum_seconds: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        for (bound, count) in self.bounds_seconds.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds_seconds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {}",
            self.sum_seconds, self.count
        );
    }
}

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    has_leader: bool,
    is_leader: bool,
    leader_changes: u64,
    proposals_committed: u64,
    proposals_applied: u64,
    proposals_pending: u64,
    proposals_failed: u64,
    wal_fsync: Histogram,
    apply: Histogram,
    peer_frames_dropped: u64,
    /// Committed entries too large for one loop turn, applied over several.
    apply_entries_split: u64,
    /// The WAL's disk is full (writes refused until it has room).
    wal_out_of_space: bool,
    /// When the process started, in seconds since the Unix epoch.
    start_time_seconds: f64,
}

impl Metrics {
    /// Metrics of a process that starts now.
    pub fn starting_now() -> Metrics {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Metrics {
            start_time_seconds: since_epoch.as_secs_f64(),
            ..Metrics::default()
        }
    }
}

impl Metrics {
    /// The member now follows `leader` ([`NO_NODE`]: none); `own_id` is this member's.
    pub(super) fn on_leader(&mut self, leader: u64, own_id: u64) {
        self.has_leader = leader != NO_NODE;
        self.is_leader = leader == own_id;
        if leader != NO_NODE {
            self.leader_changes += 1;
        }
    }

    pub(super) fn on_proposal_applied(&mut self) {
        self.proposals_applied += 1;
        self.proposals_committed += 1;
    }

    pub(super) fn on_proposal_failed(&mut self) {
        self.proposals_failed += 1;
    }

    pub(super) fn set_proposals_pending(&mut self, pending: usize) {
        self.proposals_pending = pending as u64;
    }

    pub(super) fn on_apply_split(&mut self) {
        self.apply_entries_split += 1;
    }

    pub(super) fn on_peer_frame_dropped(&mut self) {
        self.peer_frames_dropped += 1;
    }

    pub(super) fn set_wal_out_of_space(&mut self, full: bool) {
        self.wal_out_of_space = full;
    }

    pub(super) fn observe_wal_fsync(&mut self, took: Duration) {
        self.wal_fsync.observe(took);
    }

    pub(super) fn observe_apply(&mut self, took: Duration) {
        self.apply.observe(took);
    }
}

/// What the plain HTTP endpoints report on.
pub(super) struct MemberView<'a> {
    pub(super) metrics: &'a Metrics,
    pub(super) kv: &'a KvStore,
    pub(super) node: &'a Node,
    pub(super) leader: u64,
    pub(super) wal_out_of_space: bool,
    pub(super) quota_bytes: u64,
    /// Open watches, over all streams.
    pub(super) watchers: usize,
}

impl MemberView<'_> {
    /// The answer to a plain HTTP request for `path`: status, content type and body.
    pub(super) fn http_response(&self, path: &str) -> (u16, &'static str, Bytes) {
        match path {
            "/health" => {
                // As etcd's: unhealthy without a leader, and while any alarm is raised; also
                // while the disk under the WAL is full (the alarm may not be applied here).
                let healthy =
                    self.leader != NO_NODE && !self.kv.has_alarms() && !self.wal_out_of_space;
                let body = format!("{{\"health\":\"{healthy}\"}}");
                (
                    if healthy { 200 } else { 503 },
                    "application/json",
                    Bytes::from(body),
                )
            }
            "/metrics" => (
                200,
                "text/plain; version=0.0.4",
                Bytes::from(self.metrics.render(self.store_gauges())),
            ),
            // etcd's version endpoint, which scripts and tools probe.
            "/version" => (
                200,
                "application/json",
                Bytes::from(format!(
                    "{{\"etcdserver\":\"{}\",\"etcdcluster\":\"{}\"}}",
                    super::etcd_version::ETCD_VERSION,
                    super::etcd_version::ETCD_CLUSTER_VERSION
                )),
            ),
            _ => (
                404,
                "text/plain",
                Bytes::from_static(b"404 page not found\n"),
            ),
        }
    }

    fn store_gauges(&self) -> StoreGauges {
        let status = self.kv.status();
        StoreGauges {
            db_size_bytes: status.db_size_bytes(),
            keys: status.key_count(),
            quota_bytes: self.quota_bytes,
            watchers: self.watchers as u64,
            voting_members: self.node.status().conf().voters().len() as u64,
        }
    }
}

/// Figures of the store, its limits and the membership, read when `/metrics` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct StoreGauges {
    pub(super) db_size_bytes: u64,
    pub(super) keys: u64,
    pub(super) quota_bytes: u64,
    /// Open watches, over all streams (gRPC and the JSON gateway).
    pub(super) watchers: u64,
    pub(super) voting_members: u64,
}

impl Metrics {
    pub fn render(&self, store: StoreGauges) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "etcd_server_has_leader",
            "Whether a leader exists (1) or not (0).",
            "gauge",
            u64::from(self.has_leader),
        );
        gauge(
            &mut out,
            "tally_wal_out_of_space",
            "Whether the WAL's disk is full (1): writes are refused until it has room.",
            "gauge",
            u64::from(self.wal_out_of_space),
        );
        gauge(
            &mut out,
            "etcd_server_is_leader",
            "Whether this member is the leader.",
            "gauge",
            u64::from(self.is_leader),
        );
        gauge(
            &mut out,
            "etcd_server_leader_changes_seen_total",
            "Leader changes seen.",
            "counter",
            self.leader_changes,
        );
        gauge(
            &mut out,
            "etcd_server_proposals_committed_total",
            "Consensus proposals committed.",
            "counter",
            self.proposals_committed,
        );
        gauge(
            &mut out,
            "etcd_server_proposals_applied_total",
            "Consensus proposals applied.",
            "counter",
            self.proposals_applied,
        );
        gauge(
            &mut out,
            "etcd_server_proposals_pending",
            "Proposals waiting for commit.",
            "gauge",
            self.proposals_pending,
        );
        gauge(
            &mut out,
            "etcd_server_proposals_failed_total",
            "Proposals that failed.",
            "counter",
            self.proposals_failed,
        );
        gauge(
            &mut out,
            "tally_peer_frames_dropped_total",
            "Peer frames dropped because a send queue was full.",
            "counter",
            self.peer_frames_dropped,
        );
        gauge(
            &mut out,
            "tally_apply_entries_split_total",
            "Committed entries (a large delete, txn or lease revoke) applied over several loop \
             turns, readers seeing none of each until its last turn.",
            "counter",
            self.apply_entries_split,
        );
        self.wal_fsync.render(
            "etcd_disk_wal_fsync_duration_seconds",
            "WAL batch write + fdatasync latency.",
            &mut out,
        );
        self.apply.render(
            "tally_apply_duration_seconds",
            "Time to apply one batch of committed entries.",
            &mut out,
        );
        render_store(store, &mut out);
        gauge(
            &mut out,
            "tally_cluster_voting_members",
            "Voting members in the cluster's configuration.",
            "gauge",
            store.voting_members,
        );
        gauge(
            &mut out,
            "tally_cluster_fault_tolerance",
            "Voting members that may fail while a quorum remains.",
            "gauge",
            super::members::fault_tolerance(store.voting_members as usize) as u64,
        );
        render_process(self.start_time_seconds, &mut out);
        out
    }
}

/// `name value` with its help and type lines; values as Prometheus text takes them.
fn metric(out: &mut String, name: &str, help: &str, kind: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

fn render_store(store: StoreGauges, out: &mut String) {
    // etcd's names: dashboards and `etcdctl check datascale` read them.
    let size_help = "Total size of the store in bytes (keys, values, bookkeeping, history).";
    metric(
        out,
        "etcd_mvcc_db_total_size_in_bytes",
        size_help,
        "gauge",
        store.db_size_bytes,
    );
    let in_use = "The same as etcd_mvcc_db_total_size_in_bytes: the store has no free pages.";
    metric(
        out,
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        in_use,
        "gauge",
        store.db_size_bytes,
    );
    metric(
        out,
        "etcd_debugging_mvcc_keys_total",
        "Keys that exist.",
        "gauge",
        store.keys,
    );
    metric(
        out,
        "etcd_debugging_mvcc_watcher_total",
        "Open watches.",
        "gauge",
        store.watchers,
    );
    let quota_help = "The space quota: --quota-backend-bytes, 2 GiB by default.";
    metric(
        out,
        "etcd_server_quota_backend_bytes",
        quota_help,
        "gauge",
        store.quota_bytes,
    );
}

/// The standard `process_*` metrics of Prometheus clients, from `/proc/self` (Linux); the
/// ones that cannot be read are left out.
fn render_process(start_time_seconds: f64, out: &mut String) {
    // /proc reports CPU time in USER_HZ ticks, 100 a second on every Linux ABI.
    const TICKS_PER_SECOND: f64 = 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    if let Some(rss) = kib("VmRSS:") {
        let help = "Resident memory size in bytes.";
        metric(
            out,
            "process_resident_memory_bytes",
            help,
            "gauge",
            rss * 1024,
        );
    }
    if let Some(size) = kib("VmSize:") {
        let help = "Virtual memory size in bytes.";
        metric(
            out,
            "process_virtual_memory_bytes",
            help,
            "gauge",
            size * 1024,
        );
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are the stat file's fields 14 and 15: 11 and 12 after the name.
    if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
        let seconds = (user + system) as f64 / TICKS_PER_SECOND;
        let help = "Total user and system CPU time spent in seconds.";
        metric(out, "process_cpu_seconds_total", help, "counter", seconds);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let help = "Number of open file descriptors.";
        metric(out, "process_open_fds", help, "gauge", fds.count());
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok());
    if let Some(max_fds) = max_fds {
        let help = "Maximum number of open file descriptors.";
        metric(out, "process_max_fds", help, "gauge", max_fds);
    }
    let help = "Start time of the process since unix epoch in seconds.";
    metric(
        out,
        "process_start_time_seconds",
        help,
        "gauge",
        start_time_seconds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let mut metrics = Metrics {
            has_leader: true,
            leader_changes: 2,
            ..Metrics::default()
        };
        metrics.wal_fsync.observe(Duration::from_micros(1500));
        let store = StoreGauges {
            db_size_bytes: 4096,
            keys: 3,
            quota_bytes: 0,
            watchers: 2,
            voting_members: 5,
        };
        let text = metrics.render(store);
        assert!(text.contains("etcd_server_has_leader 1"));
        assert!(text.contains("etcd_server_leader_changes_seen_total 2"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 1"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_count 1"));
        assert!(text.contains("etcd_mvcc_db_total_size_in_bytes 4096"));
        assert!(text.contains("etcd_debugging_mvcc_keys_total 3"));
        assert!(text.contains("etcd_debugging_mvcc_watcher_total 2"));
        assert!(text.contains("tally_cluster_voting_members 5"));
        assert!(text.contains("tally_cluster_fault_tolerance 2"));
    }

    /// `etcdctl check datascale` reads process_resident_memory_bytes before and after its
    /// load, and refuses to run without it.
    #[test]
    fn process_metrics_come_from_proc() {
        let store = StoreGauges {
            db_size_bytes: 0,
            keys: 0,
            quota_bytes: 0,
            watchers: 0,
            voting_members: 0,
        };
        let text = Metrics::default().render(store);
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .expect(name);
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        assert!(
            value("process_resident_memory_bytes") > 1_000_000.0,
            "this test's own RSS"
        );
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
