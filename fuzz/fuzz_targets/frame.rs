//! One datagram, as a station (or anyone on the network) sends it: every stage of the gateway's
//! codec must answer it without panicking, and a frame that decodes must encode back to the
//! same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_gateway::wire;
use tagwatch_model::StationKey;

/// The key of the protocol vectors, so the seeds' MACs verify and decoding goes deep.
const KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

fuzz_target!(|data: &[u8]| {
    let key = StationKey(KEY);
    let _ = wire::check(data, wire::MAX_BODY_LEN);
    let _ = wire::datagram_header(data, 32 * 1024);
    let _ = wire::verify(data, &key);
    if let Ok(frame) = wire::decode_verified(data) {
        // What decodes is what was sent: re-encoding gives a frame that decodes the same.
        let bytes = wire::encode(&frame, &key).expect("a decoded frame encodes");
        let again = wire::decode_verified(&bytes).expect("an encoded frame decodes");
        assert_eq!(again, frame);
    }
    if let Ok(frame) = wire::decode_datagram(data, &key, 32 * 1024) {
        assert!(data.len() >= wire::HEADER_LEN + wire::MAC_LEN);
        assert_eq!(frame.key().station.0 != 0, true);
    }
});
