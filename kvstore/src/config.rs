//! The store's limits and settings.

/// Settings of a [`crate::KvStore`]. Every limit ends in `_max`; build with `Default` and the
/// `with_*` setters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvConfig {
    txn_ops_max: usize,
    lease_ttl_secs_min: i64,
    watch_pending_events_max: usize,
    watch_fragment_bytes_max: usize,
    watchers_max: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            // etcd's --max-txn-ops default.
            txn_ops_max: 128,
            // etcd's minimum TTL with its default heartbeat (100 ms) and election timeout (1 s).
            lease_ttl_secs_min: 2,
            watch_pending_events_max: 1024,
            // etcd's default max request size, which bounds its watch fragments.
            watch_fragment_bytes_max: 1536 * 1024,
            watchers_max: 1 << 20,
        }
    }
}

impl KvConfig {
    /// The most operations in one op list (or compares) of a txn.
    pub fn with_txn_ops_max(mut self, n: usize) -> Self {
        self.txn_ops_max = n;
        self
    }

    /// Shorter TTLs are raised to this, as etcd raises them to its minimum.
    pub fn with_lease_ttl_secs_min(mut self, secs: i64) -> Self {
        self.lease_ttl_secs_min = secs;
        self
    }

    /// Queued events per watcher before it falls back to catching up from history.
    pub fn with_watch_pending_events_max(mut self, n: usize) -> Self {
        self.watch_pending_events_max = n;
        self
    }

    /// The most encoded event bytes per fragment, for watchers that asked for fragmenting.
    pub fn with_watch_fragment_bytes_max(mut self, n: usize) -> Self {
        self.watch_fragment_bytes_max = n;
        self
    }

    /// The most watchers the hub holds at once.
    pub fn with_watchers_max(mut self, n: usize) -> Self {
        self.watchers_max = n;
        self
    }

    /// The most operations in one op list (or compares) of a txn.
    pub fn txn_ops_max(&self) -> usize {
        self.txn_ops_max
    }

    /// The shortest lease TTL, in seconds; shorter ones are raised to it.
    pub fn lease_ttl_secs_min(&self) -> i64 {
        self.lease_ttl_secs_min
    }

    /// Queued events per watcher before it falls back to catching up from history.
    pub fn watch_pending_events_max(&self) -> usize {
        self.watch_pending_events_max
    }

    /// The most encoded event bytes per fragment.
    pub fn watch_fragment_bytes_max(&self) -> usize {
        self.watch_fragment_bytes_max
    }

    /// The most watchers the hub holds at once.
    pub fn watchers_max(&self) -> usize {
        self.watchers_max
    }
}
