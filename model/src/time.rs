//! Times are Unix milliseconds (`i64`) everywhere inside TagWatch; RFC 3339 only at the API edge.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The current wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// The earliest and latest times RFC 3339 can write (years 0000 and 9999).
const RFC3339_MIN_MS: i64 = -62_167_219_200_000;
const RFC3339_MAX_MS: i64 = 253_402_300_799_999;

/// Formats Unix milliseconds as RFC 3339 in UTC, e.g. `2023-11-14T22:13:20.000Z`; a time beyond
/// what RFC 3339 can write is written as its first or last instant, never as a bare number.
pub fn to_rfc3339(ms: i64) -> String {
    let ms = ms.clamp(RFC3339_MIN_MS, RFC3339_MAX_MS);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59.999Z".to_owned())
}

/// Parses an RFC 3339 time into Unix milliseconds.
pub fn from_rfc3339(text: &str) -> Result<i64, time::error::Parse> {
    let t = OffsetDateTime::parse(text, &Rfc3339)?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ms = 1_700_000_000_123;
        let text = to_rfc3339(ms);
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(from_rfc3339(&text).expect("parses"), ms);
        assert!(from_rfc3339("yesterday").is_err());
    }

    #[test]
    fn every_time_is_written_as_rfc3339() {
        assert_eq!(to_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(to_rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
        for ms in [i64::MAX, i64::MIN, RFC3339_MAX_MS, RFC3339_MIN_MS, 0] {
            assert!(from_rfc3339(&to_rfc3339(ms)).is_ok(), "{ms}");
        }
    }
}
