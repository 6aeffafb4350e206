//! # Open files: how many connections of each kind the process can afford.
//!
//! Every connection is a file descriptor, and a process has `RLIMIT_NOFILE` of them (often a
//! soft limit of 1,024, with a far higher hard limit). At start the server raises its soft limit
//! as far as the hard one allows, then splits what it got: a fixed reserve for the store's
//! connections, listeners and files, a share for the HTTP API (so that `/healthz` and officers
//! are answered whatever the stations do), and the rest, up to the configured number, for
//! station TCP connections. Without the split, a thousand idle station connections at a 1,024
//! limit left the HTTP listener unable to accept ("Too many open files").

/// Descriptors kept for everything that is not a client connection: the store's pool, the
/// listeners, the SQLite files and journal, the runtime's own.
pub const RESERVE: u64 = 128;

/// How the open-file limit is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft `RLIMIT_NOFILE` in effect.
    pub limit: u64,
    pub tcp_connections: usize,
    pub http_connections: usize,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in effect (the old
/// one if it could not be raised, which is logged).
pub fn raise_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1_024, |(soft, _)| soft);
            tracing::warn!(%error, limit, "could not raise the open-file limit");
            limit
        }
    }
}

/// Shares `limit` descriptors: the reserve, then up to a quarter of the rest for HTTP
/// connections (at most `http_wanted`), then the rest for station TCP (at most `tcp_wanted`).
pub fn budget(limit: u64, tcp_wanted: usize, http_wanted: usize) -> Budget {
    let usable = usize::try_from(limit.saturating_sub(RESERVE))
        .unwrap_or(usize::MAX)
        .max(16);
    let http_connections = http_wanted.min(usable / 4).max(4);
    let tcp_connections = tcp_wanted.min(usable - http_connections).max(1);
    Budget {
        limit,
        tcp_connections,
        http_connections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_limit_is_shared_and_never_overcommitted() {
        let b = budget(1_024, 4_096, 1_024);
        assert_eq!((b.http_connections, b.tcp_connections), (224, 672));
        assert!(b.http_connections as u64 + b.tcp_connections as u64 + RESERVE <= 1_024);
    }

    #[test]
    fn a_high_limit_gives_what_is_configured() {
        let b = budget(1 << 20, 4_096, 1_024);
        assert_eq!((b.http_connections, b.tcp_connections), (1_024, 4_096));
    }

    #[test]
    fn a_tiny_limit_still_leaves_room_for_the_api() {
        let b = budget(64, 4_096, 1_024);
        assert!(b.http_connections >= 4 && b.tcp_connections >= 1, "{b:?}");
    }
}
