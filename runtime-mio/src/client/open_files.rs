//! How many client connections the process can hold: its open files limit (RLIMIT_NOFILE),
//! less what the rest of the server needs. Read from `/proc/self/limits`, which says the same
//! as getrlimit(2) without a system-call binding.

/// File descriptors kept for everything but client connections: peer links (64 inbound and
/// 64 outbound by default), up to 16 client and 16 metrics listeners and the peer listener,
/// WAL segments, snapshot files and transfers, the poller, its waker and stdio, with room to
/// spare: running out of them stalls Raft, while a client can always be asked to reconnect.
pub const FDS_RESERVED: u64 = 256;

/// Connections kept possible however low the limit: below this the server is unusable anyway,
/// and `accept` running out of descriptors is handled by eviction too.
const CONNECTIONS_MIN: usize = 16;

/// Client connections for a process whose soft open files limit is `open_files_max`.
pub fn connections_max_for_open_files(open_files_max: u64) -> usize {
    let connections = open_files_max.saturating_sub(FDS_RESERVED);
    // The token space bounds a server's connections long before memory does.
    let cap = (super::TOKEN_SPAN - super::LISTENERS_MAX - 1) as u64;
    (connections.min(cap) as usize).max(CONNECTIONS_MIN)
}

/// The soft open files limit of this process; `None` when it cannot be read, or is unlimited.
pub fn open_files_max() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_soft(&text)
}

/// The soft limit from the text of `/proc/<pid>/limits`:
/// `Max open files            1024                 524288               files`.
fn parse_open_files_soft(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 524288               files     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        assert_eq!(parse_open_files_soft(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024  ", "unlimited");
        assert_eq!(parse_open_files_soft(&unlimited), None);
        assert_eq!(parse_open_files_soft("Max processes 10 10 processes"), None);
        assert!(
            open_files_max().is_some_and(|n| n >= 3),
            "this process has stdio"
        );
    }

    #[test]
    fn connections_follow_the_limit_less_the_reserve() {
        assert_eq!(connections_max_for_open_files(1024), 1024 - 256);
        assert_eq!(connections_max_for_open_files(1 << 20), (1 << 20) - 256);
        assert_eq!(connections_max_for_open_files(100), CONNECTIONS_MIN);
        assert!(connections_max_for_open_files(u64::MAX) < super::super::TOKEN_SPAN);
    }
}
