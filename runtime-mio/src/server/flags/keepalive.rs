//! etcd's `--grpc-keepalive-*` flags, read as grpc-go reads its settings.

/// etcd's `--grpc-keepalive-*` flags, in milliseconds, with zeros already replaced by the
/// grpc-go defaults etcd falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GrpcKeepalive {
    min_time_ms: u64,
    interval_ms: u64,
    timeout_ms: u64,
}

/// grpc-go's `EnforcementPolicy` default `MinTime`, which etcd leaves in place for
/// `--grpc-keepalive-min-time=0`.
const GRPC_DEFAULT_MIN_TIME_MS: u64 = 5 * 60 * 1000;
/// grpc-go's `ServerParameters` defaults, which etcd leaves in place unless both
/// `--grpc-keepalive-interval` and `--grpc-keepalive-timeout` are above zero.
pub(super) const GRPC_DEFAULT_INTERVAL_MS: u64 = 2 * 60 * 60 * 1000;
pub(super) const GRPC_DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// grpc-go raises a shorter server keep-alive interval to this.
const GRPC_INTERVAL_MS_MIN: u64 = 1000;

impl GrpcKeepalive {
    pub(super) fn new(min_time_ms: u64, interval_ms: u64, timeout_ms: u64) -> GrpcKeepalive {
        let (interval_ms, timeout_ms) = if interval_ms == 0 || timeout_ms == 0 {
            (GRPC_DEFAULT_INTERVAL_MS, GRPC_DEFAULT_TIMEOUT_MS)
        } else {
            (interval_ms.max(GRPC_INTERVAL_MS_MIN), timeout_ms)
        };
        GrpcKeepalive {
            min_time_ms: if min_time_ms == 0 {
                GRPC_DEFAULT_MIN_TIME_MS
            } else {
                min_time_ms
            },
            interval_ms,
            timeout_ms,
        }
    }

    /// Clients pinging more often than this get GOAWAY.
    pub(super) fn min_time_ms(&self) -> u64 {
        self.min_time_ms
    }

    /// The server pings a client silent this long.
    pub(super) fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// How long a server ping may go unanswered.
    pub(super) fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
}
