//! Counters and histograms for `/metrics` (Prometheus text format) and `/health`.

use std::fmt::Write as _;
use std::time::Duration;

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
    pub(super) has_leader: bool,
    pub(super) is_leader: bool,
    pub(super) leader_changes: u64,
    pub(super) proposals_committed: u64,
    pub(super) proposals_applied: u64,
    pub(super) proposals_pending: u64,
    pub(super) proposals_failed: u64,
    pub(super) wal_fsync: Histogram,
    pub(super) apply: Histogram,
    pub(super) peer_frames_dropped: u64,
}

impl Metrics {
    pub fn render(&self) -> String {
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
        out
    }
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
        let text = metrics.render();
        assert!(text.contains("etcd_server_has_leader 1"));
        assert!(text.contains("etcd_server_leader_changes_seen_total 2"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 1"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_count 1"));
    }
}
