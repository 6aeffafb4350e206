//! # Rate limits: per bearer token on every call; per source address and per (username, source)
//! on login.
//!
//! A token that calls faster than its quota gets 429 with `Retry-After`. Logins are limited
//! twice: a source address may try so many usernames a minute (so one address cannot spray
//! guesses across accounts, nor make the server hash passwords without end), and a username
//! tried too often *from one address* is held back there, which slows guessing to a crawl
//! without letting an attacker elsewhere lock the real user out of their account.

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Calls per second a token may sustain, and the burst it may make (defaults of the server's
/// `token_calls_per_s` and `token_call_burst`).
pub const CALLS_PER_SECOND: u32 = 50;
pub const CALL_BURST: u32 = 200;
/// Login attempts per minute for one username from one source address, and the burst.
const LOGINS_PER_MINUTE: u32 = 6;
const LOGIN_BURST: u32 = 10;
/// Requests without a valid token (logins, refused tokens) per minute from one source address,
/// and the burst: a station house behind one address logs in a shift at a time.
pub const UNAUTHENTICATED_PER_MINUTE: u32 = 60;
pub const UNAUTHENTICATED_BURST: u32 = 30;

/// The limiters of one server.
#[derive(Debug)]
pub struct Limits {
    calls: DefaultKeyedRateLimiter<[u8; 32]>,
    logins: DefaultKeyedRateLimiter<(String, IpAddr)>,
    unauthenticated: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::per_token(CALLS_PER_SECOND, CALL_BURST)
    }
}

/// The 429 for a key over its quota, with how long to wait.
fn wait(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
    ApiError::TooManyRequests(not_until.wait_time_from(DefaultClock::default().now()))
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    /// `calls_per_second` sustained per token, bursts of `burst`; the login limits as default.
    pub fn per_token(calls_per_second: u32, burst: u32) -> Self {
        Self::configured(
            calls_per_second,
            burst,
            UNAUTHENTICATED_PER_MINUTE,
            UNAUTHENTICATED_BURST,
        )
    }

    /// Every limit from the configuration: per token, and per source address without a token.
    pub fn configured(
        calls_per_second: u32,
        burst: u32,
        unauthenticated_per_minute: u32,
        unauthenticated_burst: u32,
    ) -> Self {
        Self::new(
            Quota::per_second(nonzero(calls_per_second)).allow_burst(nonzero(burst)),
            Quota::per_minute(nonzero(LOGINS_PER_MINUTE)).allow_burst(nonzero(LOGIN_BURST)),
            Quota::per_minute(nonzero(unauthenticated_per_minute))
                .allow_burst(nonzero(unauthenticated_burst)),
        )
    }

    pub fn new(calls: Quota, logins: Quota, unauthenticated: Quota) -> Self {
        Self {
            calls: RateLimiter::keyed(calls),
            logins: RateLimiter::keyed(logins),
            unauthenticated: RateLimiter::keyed(unauthenticated),
        }
    }

    /// Counts one call by the token with this hash.
    pub fn call(&self, token_hash: &[u8; 32]) -> Result<(), ApiError> {
        self.calls.check_key(token_hash).map_err(wait)
    }

    /// Counts one login attempt for a username from a source address (and one request without
    /// a token from that address).
    pub fn login(&self, username: &str, source: IpAddr) -> Result<(), ApiError> {
        self.unauthenticated(source)?;
        self.logins
            .check_key(&(username.to_lowercase(), source))
            .map_err(wait)
    }

    /// Counts one request from `source` that carried no valid token.
    pub fn unauthenticated(&self, source: IpAddr) -> Result<(), ApiError> {
        self.unauthenticated.check_key(&source).map_err(wait)
    }

    /// Forgets keys idle long enough to be back at full quota (bounds memory).
    pub fn forget_idle(&self) {
        self.calls.retain_recent();
        self.logins.retain_recent();
        self.unauthenticated.retain_recent();
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn one_address_cannot_spray_logins_across_usernames() {
        let limits = Limits::default();
        let attacker = IpAddr::from([10, 0, 0, 9]);
        let allowed = (0..200)
            .filter(|i| limits.login(&format!("user{i}"), attacker).is_ok())
            .count();
        assert_eq!(allowed, UNAUTHENTICATED_BURST as usize);
        assert!(limits.login("user0", IpAddr::from([10, 0, 0, 10])).is_ok());
    }
}

/// How long a caller should wait, rounded up to whole seconds for `Retry-After`.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_quota_waits_and_others_do_not() {
        let quota = Quota::per_minute(nonzero(1)).allow_burst(nonzero(2));
        let unauthenticated = Quota::per_minute(nonzero(UNAUTHENTICATED_PER_MINUTE))
            .allow_burst(nonzero(UNAUTHENTICATED_BURST));
        let limits = Limits::new(quota, quota, unauthenticated);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(limits.call(&a).is_ok());
        assert!(limits.call(&a).is_ok());
        match limits.call(&a) {
            Err(ApiError::TooManyRequests(wait)) => {
                assert!(wait > Duration::from_secs(20), "{wait:?}");
                assert!(retry_after_secs(wait) <= 60);
            }
            other => panic!("expected a wait, got {other:?}"),
        }
        assert!(limits.call(&b).is_ok(), "another token is not affected");
        let (here, there) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert!(limits.login("Alice", here).is_ok());
        assert!(limits.login("alice", here).is_ok());
        assert!(
            limits.login("ALICE", here).is_err(),
            "usernames are limited case-blind"
        );
        assert!(
            limits.login("alice", there).is_ok(),
            "guesses from one address do not lock the user out elsewhere"
        );
    }
}
