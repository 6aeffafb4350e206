//! The codec against `PROTOCOL.md`: every published vector, encode/decode identity, no panics on
//! any input, and each rejection path on its own.

use proptest::prelude::*;
use serde::Deserialize;
use tagwatch_gateway::wire::{
    self, AckStatus, Body, Frame, Kind, Position, Record, Status, WireError,
};
use tagwatch_model::{SessionId, StationId, StationKey, TagId};

#[derive(Deserialize)]
struct Vector {
    name: String,
    key_hex: String,
    frame_hex: String,
    expect: serde_json::Value,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("protocol-vectors.json")).expect("vectors parse")
}

fn key() -> StationKey {
    StationKey((0u8..32).collect::<Vec<_>>().try_into().expect("32 bytes"))
}

fn expected_frame(e: &serde_json::Value) -> Frame {
    let u = |name: &str| e[name].as_u64().unwrap_or_else(|| panic!("field {name}"));
    let position = e["position"].as_object().map(|p| Position {
        lat_e7: p["lat_e7"].as_i64().expect("lat") as i32,
        lon_e7: p["lon_e7"].as_i64().expect("lon") as i32,
    });
    let body = match e["kind"].as_str().expect("kind") {
        "DETECTIONS" => Body::Detections(
            e["detections"]
                .as_array()
                .expect("detections")
                .iter()
                .map(|d| Record {
                    tag: TagId(d["tag"].as_u64().expect("tag") as u32),
                    age_ms: d["age_ms"].as_u64().expect("age") as u16,
                    rssi: d["rssi"].as_i64().expect("rssi") as i8,
                    reads: d["reads"].as_u64().expect("reads") as u8,
                    tag_flags: d["flags"].as_u64().expect("flags") as u8,
                    antenna: d["antenna"].as_u64().expect("antenna") as u8,
                })
                .collect(),
        ),
        "STATUS" => {
            let s = &e["status"];
            let f = |name: &str| s[name].as_i64().unwrap_or_else(|| panic!("status {name}"));
            Body::Status(Status {
                uptime_s: f("uptime_s") as u32,
                backlog: f("backlog") as u32,
                fw_version: f("fw_version") as u16,
                temp_c: f("temp_c") as i8,
                power: f("power") as u8,
                tags_in_range: f("tags_in_range") as u16,
            })
        }
        "ACK" => Body::Ack(match e["ack_status"].as_str().expect("status") {
            "ACCEPTED" => AckStatus::Accepted,
            "DUPLICATE" => AckStatus::Duplicate,
            "REJECTED" => AckStatus::Rejected,
            "BUSY" => AckStatus::Busy,
            other => panic!("unknown ack status {other}"),
        }),
        other => panic!("unknown kind {other}"),
    };
    Frame {
        station: StationId(u("station") as u32),
        session: SessionId(u("session") as u32),
        seq: u("seq") as u32,
        time_ms: u("time_ms"),
        position,
        body,
    }
}

/// Maps a decode error to the vocabulary of `protocol-vectors.json`.
fn vector_error_name(error: WireError) -> &'static str {
    match error {
        WireError::Incomplete { .. } => "incomplete",
        WireError::LengthMismatch { .. } | WireError::BodyLength { .. } => "length",
        WireError::Version(_) => "version",
        WireError::Mac => "mac",
        other => other.reason(),
    }
}

#[test]
fn every_published_vector_decodes_as_specified() {
    let vectors = vectors();
    assert!(vectors.len() >= 9, "the vector file lost entries");
    for v in vectors {
        let key = StationKey::from_hex(&v.key_hex).expect("key");
        let bytes = hex::decode(&v.frame_hex).expect("hex");
        let result = wire::decode_datagram(&bytes, &key, wire::MAX_BODY_LEN);
        if let Some(error) = v.expect.get("error") {
            let got = result.expect_err(&v.name);
            assert_eq!(
                vector_error_name(got),
                error.as_str().expect("error"),
                "{}",
                v.name
            );
        } else {
            let frame = result.unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(frame, expected_frame(&v.expect), "{}", v.name);
            // And our encoder produces exactly the published bytes.
            let encoded = wire::encode(&frame, &key).expect("encodes");
            assert_eq!(hex::encode(&encoded), v.frame_hex, "{}", v.name);
        }
    }
}

fn sample(body: Body, position: Option<Position>) -> Frame {
    Frame {
        station: StationId(1001),
        session: SessionId(7),
        seq: 1,
        time_ms: 1_700_000_000_000,
        position,
        body,
    }
}

fn record(tag: u32) -> Record {
    Record {
        tag: TagId(tag),
        age_ms: 5,
        rssi: -60,
        reads: 2,
        tag_flags: 0,
        antenna: 1,
    }
}

/// Rewrites the header bytes of a valid frame and re-signs it, to reach the checks behind the MAC.
fn resigned(mut bytes: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut bytes);
    let body_end = bytes.len() - wire::MAC_LEN;
    bytes.truncate(body_end);
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key().as_bytes()).expect("key");
    mac.update(&bytes);
    let tag = mac.finalize().into_bytes();
    bytes.extend_from_slice(&tag[..wire::MAC_LEN]);
    bytes
}

fn detections_bytes() -> Vec<u8> {
    wire::encode(&sample(Body::Detections(vec![record(5)]), None), &key())
        .expect("encodes")
        .to_vec()
}

fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
    wire::decode_datagram(bytes, &key(), 1024)
}

#[test]
fn rejects_bad_magic() {
    let mut bytes = detections_bytes();
    bytes[0] = b'X';
    assert_eq!(decode(&bytes), Err(WireError::Magic([b'X', b'W'])));
}

#[test]
fn rejects_unknown_version() {
    let mut bytes = detections_bytes();
    bytes[2] = 2;
    assert_eq!(decode(&bytes), Err(WireError::Version(2)));
}

#[test]
fn rejects_body_over_the_limit_before_reading_it() {
    let header_only = &detections_bytes()[..wire::HEADER_LEN];
    let mut header = header_only.to_vec();
    header[6..8].copy_from_slice(&2000u16.to_be_bytes());
    assert_eq!(
        wire::check(&header, 1024),
        Err(WireError::TooLong {
            length: 2000,
            max: 1024
        })
    );
}

#[test]
fn short_input_is_incomplete_not_malformed() {
    let bytes = detections_bytes();
    assert_eq!(
        wire::check(&bytes[..10], 1024),
        Err(WireError::Incomplete {
            needed: wire::HEADER_LEN,
            have: 10
        })
    );
    assert!(matches!(
        wire::check(&bytes[..bytes.len() - 1], 1024),
        Err(WireError::Incomplete { .. })
    ));
    // As a datagram, a whole header with a short body is final: a length mismatch.
    assert!(matches!(
        decode(&bytes[..bytes.len() - 1]),
        Err(WireError::LengthMismatch { .. })
    ));
}

#[test]
fn rejects_trailing_bytes_in_a_datagram() {
    let mut bytes = detections_bytes();
    bytes.push(0);
    assert!(matches!(
        decode(&bytes),
        Err(WireError::LengthMismatch { .. })
    ));
}

#[test]
fn rejects_a_frame_signed_with_another_key() {
    let other = StationKey([9; 32]);
    let bytes =
        wire::encode(&sample(Body::Detections(vec![record(5)]), None), &other).expect("encodes");
    assert_eq!(decode(&bytes), Err(WireError::Mac));
}

#[test]
fn rejects_unknown_kind_flags_and_reserved() {
    let bytes = resigned(detections_bytes(), |b| b[3] = 0x07);
    assert_eq!(decode(&bytes), Err(WireError::Kind(0x07)));
    let bytes = resigned(detections_bytes(), |b| b[4] = 0x02);
    assert_eq!(decode(&bytes), Err(WireError::Flags(0x02)));
    let bytes = resigned(detections_bytes(), |b| b[5] = 1);
    assert_eq!(decode(&bytes), Err(WireError::Reserved(1)));
}

#[test]
fn rejects_zero_session_and_seq() {
    let bytes = resigned(detections_bytes(), |b| b[12..16].fill(0));
    assert_eq!(decode(&bytes), Err(WireError::ZeroSession));
    let bytes = resigned(detections_bytes(), |b| b[16..20].fill(0));
    assert_eq!(decode(&bytes), Err(WireError::ZeroSeq));
    let bytes = resigned(detections_bytes(), |b| b[8..12].fill(0));
    assert_eq!(decode(&bytes), Err(WireError::ZeroStation));
}

#[test]
fn rejects_a_count_that_disagrees_with_the_length() {
    // count says 2 but there is room for 1 record.
    let bytes = resigned(detections_bytes(), |b| {
        b[28..30].copy_from_slice(&2u16.to_be_bytes())
    });
    assert_eq!(
        decode(&bytes),
        Err(WireError::BodyLength {
            kind: Kind::Detections,
            length: 12,
            expected: 22
        })
    );
}

#[test]
fn rejects_zero_tag_and_zero_reads() {
    let frame = sample(Body::Detections(vec![record(5), record(0)]), None);
    let bytes = wire::encode(&frame, &key()).expect("encodes");
    assert_eq!(decode(&bytes), Err(WireError::ZeroTag { index: 1 }));
    let mut r = record(5);
    r.reads = 0;
    let bytes = wire::encode(&sample(Body::Detections(vec![r]), None), &key()).expect("encodes");
    assert_eq!(decode(&bytes), Err(WireError::ZeroReads { index: 0 }));
}

#[test]
fn rejects_a_position_off_the_earth() {
    let position = Position {
        lat_e7: 950_000_000,
        lon_e7: 0,
    };
    let bytes =
        wire::encode(&sample(Body::Detections(vec![]), Some(position)), &key()).expect("encodes");
    assert!(matches!(decode(&bytes), Err(WireError::Position { .. })));
}

#[test]
fn rejects_bad_status_and_ack_bodies() {
    let status = Status {
        uptime_s: 1,
        backlog: 0,
        fw_version: 1,
        temp_c: 20,
        power: 0,
        tags_in_range: 0,
    };
    let bytes = wire::encode(&sample(Body::Status(status), None), &key()).expect("encodes");
    // Claim one byte less of body: the STATUS no longer fits.
    let short = resigned(bytes.to_vec(), |b| {
        b[6..8].copy_from_slice(&13u16.to_be_bytes());
        b.remove(wire::HEADER_LEN + 13);
    });
    assert!(matches!(
        decode(&short),
        Err(WireError::BodyLength {
            kind: Kind::Status,
            ..
        })
    ));
    let ack = wire::encode(&sample(Body::Ack(AckStatus::Busy), None), &key()).expect("encodes");
    let bad_status = resigned(ack.to_vec(), |b| b[wire::HEADER_LEN] = 9);
    assert_eq!(decode(&bad_status), Err(WireError::AckStatus(9)));
    let flagged = resigned(ack.to_vec(), |b| b[4] = 1);
    assert_eq!(decode(&flagged), Err(WireError::AckFlags(1)));
}

#[test]
fn refuses_to_encode_more_records_than_fit() {
    let records = vec![record(1); wire::MAX_RECORDS + 1];
    assert!(wire::encode(&sample(Body::Detections(records), None), &key()).is_err());
    let records = vec![record(1); wire::MAX_RECORDS];
    let bytes = wire::encode(&sample(Body::Detections(records), None), &key()).expect("fits");
    assert!(wire::decode_datagram(&bytes, &key(), wire::MAX_BODY_LEN).is_ok());
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        1u32..,
        any::<u16>(),
        any::<i8>(),
        1u8..,
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(|(tag, age_ms, rssi, reads, tag_flags, antenna)| Record {
            tag: TagId(tag),
            age_ms,
            rssi,
            reads,
            tag_flags,
            antenna,
        })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let position = proptest::option::of(
        (
            -900_000_000i32..=900_000_000,
            -1_800_000_000i32..=1_800_000_000,
        )
            .prop_map(|(lat_e7, lon_e7)| Position { lat_e7, lon_e7 }),
    );
    let status = (
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        any::<i8>(),
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(
            |(uptime_s, backlog, fw_version, temp_c, power, tags_in_range)| Status {
                uptime_s,
                backlog,
                fw_version,
                temp_c,
                power,
                tags_in_range,
            },
        );
    let body = prop_oneof![
        proptest::collection::vec(arb_record(), 0..50).prop_map(Body::Detections),
        status.prop_map(Body::Status),
    ];
    (1u32.., 1u32.., 1u32.., any::<u64>(), position, body).prop_map(
        |(station, session, seq, time_ms, position, body)| Frame {
            station: StationId(station),
            session: SessionId(session),
            seq,
            time_ms,
            position,
            body,
        },
    )
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(frame in arb_frame()) {
        let bytes = wire::encode(&frame, &key()).expect("encodes");
        prop_assert_eq!(wire::decode_datagram(&bytes, &key(), wire::MAX_BODY_LEN), Ok(frame));
    }

    #[test]
    fn ack_round_trips(status in prop_oneof![
        Just(AckStatus::Accepted), Just(AckStatus::Duplicate),
        Just(AckStatus::Rejected), Just(AckStatus::Busy)
    ]) {
        let frame = sample(Body::Ack(status), None);
        let bytes = wire::encode(&frame, &key()).expect("encodes");
        prop_assert_eq!(wire::decode_datagram(&bytes, &key(), wire::MAX_BODY_LEN), Ok(frame));
    }

    #[test]
    fn no_byte_string_makes_the_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = wire::check(&bytes, 1024);
        let _ = wire::decode_datagram(&bytes, &key(), 1024);
        let _ = wire::decode_verified(&bytes);
    }

    /// Frames that get past the magic/version/length checks, with arbitrary bodies.
    #[test]
    fn no_well_framed_garbage_makes_the_decoder_panic(
        kind in any::<u8>(), flags in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..120)
    ) {
        let mut bytes = vec![b'T', b'W', 1, kind, flags, 0];
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&body);
        let signed = resigned({ bytes.extend_from_slice(&[0; 16]); bytes }, |_| {});
        let _ = wire::decode_datagram(&signed, &key(), 1024);
    }

    /// Any single flipped bit in a valid frame is detected (by the MAC or before it).
    #[test]
    fn any_flipped_bit_is_refused(frame in arb_frame(), bit in any::<prop::sample::Index>()) {
        let mut bytes = wire::encode(&frame, &key()).expect("encodes").to_vec();
        let i = bit.index(bytes.len() * 8);
        bytes[i / 8] ^= 1 << (i % 8);
        prop_assert!(wire::decode_datagram(&bytes, &key(), wire::MAX_BODY_LEN).is_err());
    }
}
