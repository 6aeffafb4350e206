//! Text an API client controls and the server parses by hand: RFC 3339 times (`from`, `to`,
//! `last_seen_at`), a query's stated purpose, and station keys in hex.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ms) = tagwatch_model::time::from_rfc3339(text) {
        // A time that parses prints again, and that reads back as the same instant.
        let printed = tagwatch_model::time::to_rfc3339(ms);
        assert_eq!(tagwatch_model::time::from_rfc3339(&printed).ok(), Some(ms));
    }
    if tagwatch_model::purpose_says_something(text) {
        assert!(text.trim().chars().filter(|c| c.is_alphanumeric()).count() >= 3);
    }
    if let Ok(key) = tagwatch_model::StationKey::from_hex(text) {
        assert_ne!(key.0, [0u8; 32]);
        assert_eq!(key.to_hex(), text.to_ascii_lowercase());
    }
});
