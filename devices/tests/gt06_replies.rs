//! The exact bytes TagWatch sends GT06 devices, the login it reads, and the framing's round
//! trip under arbitrary content.

use proptest::prelude::*;
use tagwatch_devices::gt06::frame::{check, encode, FrameError};
use tagwatch_devices::gt06::{decode, reply, Frame, MAX_FRAME_LEN};
use tagwatch_devices::{Imei, Login, Message};

fn frame(hex: &str) -> Vec<u8> {
    hex::decode(hex).expect("hex")
}

#[test]
fn login_reads_the_imei_and_is_acknowledged_with_its_serial() {
    // Concox's example login: IMEI 123456789012345, serial 1.
    let bytes = frame("78780d01012345678901234500018cdd0d0a");
    let parsed = Frame::parse(&bytes).expect("frame");
    let Message::Login(Login { imei, model }) = decode(&parsed).expect("login") else {
        panic!("not a login");
    };
    assert_eq!(imei.to_string(), "123456789012345");
    assert_eq!(model, None);
    // The acknowledgement of Concox's document, byte for byte.
    assert_eq!(
        hex::encode(reply::ack(&parsed).expect("acknowledged")),
        "787805010001d9dc0d0a"
    );
}

#[test]
fn heartbeat_fix_and_alarm_are_acknowledged_with_their_protocol_and_serial() {
    // A status heartbeat (0x13), serial 0x0005.
    let status = frame("78780a1340050400010005779f0d0a");
    let parsed = Frame::parse(&status).expect("frame");
    assert_eq!(
        hex::encode(reply::ack(&parsed).expect("ack")),
        "787805130005afd50d0a"
    );
    // A fix (0x12) from Traccar's suite, serial 0x0003.
    let fix = frame("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a");
    let parsed = Frame::parse(&fix).expect("frame");
    let ack = reply::ack(&parsed).expect("ack");
    assert_eq!(&ack[..4], &[0x78, 0x78, 0x05, 0x12]);
    assert_eq!(
        &ack[4..6],
        &fix[fix.len() - 6..fix.len() - 4],
        "the fix's serial"
    );
    Frame::parse(&ack).expect("a valid frame with a good CRC");
}

#[test]
fn time_request_is_answered_with_utc() {
    // 2026-12-06 21:30:05 UTC, serial 7.
    let answer = reply::time(1_796_592_605, 7);
    let parsed = Frame::parse(&answer).expect("frame");
    assert_eq!(parsed.protocol, 0x8A);
    assert_eq!(parsed.content, &[26, 12, 6, 21, 30, 5]);
    assert_eq!(parsed.serial, 7);
}

#[test]
fn engine_stop_is_the_command_message_with_its_server_flag() {
    let bytes = reply::command("DYD#", 0x0000_0001, 3).expect("short ASCII");
    // 78 78 | 0E | 80 | 08 (flag + text) | 00 00 00 01 | "DYD#" | 00 03 | CRC | 0D 0A
    assert_eq!(hex::encode(&bytes[..15]), "78780e800800000001445944230003");
    let parsed = Frame::parse(&bytes).expect("valid frame");
    assert_eq!(parsed.protocol, 0x80);
    assert!(
        reply::command(&"x".repeat(252), 1, 1).is_none(),
        "too long for the length byte"
    );
    assert!(reply::command("停", 1, 1).is_none(), "not ASCII");
}

#[test]
fn imeis_are_fifteen_digits() {
    assert_eq!(
        Imei::parse("868120300212345").map(|i| i.to_string()),
        Some("868120300212345".into())
    );
    assert_eq!(
        Imei::parse("012345678901234").map(|i| i.to_string()),
        Some("012345678901234".into())
    );
    for bad in ["86812030021234", "8681203002123456", "86812030021234x", ""] {
        assert!(Imei::parse(bad).is_none(), "{bad}");
    }
}

proptest! {
    /// Whatever the content, a frame written is read back whole, with its fields.
    #[test]
    fn frames_round_trip(protocol in any::<u8>(), content in proptest::collection::vec(any::<u8>(), 0..400), serial in any::<u16>()) {
        let mut bytes = Vec::new();
        encode(protocol, &content, serial, &mut bytes);
        prop_assert_eq!(check(&bytes, MAX_FRAME_LEN), Ok(bytes.len()));
        let frame = Frame::parse(&bytes).expect("round trip");
        prop_assert_eq!(frame.protocol, protocol);
        prop_assert_eq!(frame.content, &content[..]);
        prop_assert_eq!(frame.serial, serial);
        prop_assert_eq!(frame.extended, content.len() + 5 > 255);
    }

    /// Any byte changed in a frame's checked part is caught (by the CRC or the framing).
    #[test]
    fn corruption_is_caught(content in proptest::collection::vec(any::<u8>(), 0..60), at in any::<prop::sample::Index>(), flip in 1u8..) {
        let mut bytes = Vec::new();
        encode(0x12, &content, 9, &mut bytes);
        let i = 2 + at.index(bytes.len() - 4);
        bytes[i] ^= flip;
        prop_assert!(check(&bytes, MAX_FRAME_LEN).is_err() || Frame::parse(&bytes).is_err());
    }

    /// Arbitrary bytes never panic the framing or the decoder.
    #[test]
    fn arbitrary_bytes_are_an_answer_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        match check(&bytes, MAX_FRAME_LEN) {
            Ok(total) => {
                if let Ok(frame) = Frame::parse_unchecked(&bytes[..total]) {
                    let _ = decode(&frame);
                }
            }
            Err(FrameError::Incomplete { needed }) => prop_assert!(needed > bytes.len()),
            Err(_) => {}
        }
    }
}

proptest! {
    /// What the device side writes, the decoder reads back: IMEI, and each fix to a few
    /// centimetres (1/1,800,000 of a degree), to the second, with its speed and course.
    #[test]
    fn device_messages_decode_to_what_was_sent(
        imei in 0u64..1_000_000_000_000_000,
        lat in -89.9f64..89.9, lon in -179.9f64..179.9,
        speed in 0u16..=255, course in 0u16..360,
        secs in 946_684_800i64..4_102_444_799,
        code in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x0E, 0x13]),
        serial in any::<u16>(),
    ) {
        use tagwatch_devices::gt06::device;
        use tagwatch_devices::{Alarm, Fix, Report};
        let imei = Imei::from_u64(imei).expect("15 digits");
        let bytes = device::login(imei, serial);
        let login = decode(&Frame::parse(&bytes).expect("frame")).expect("login");
        prop_assert_eq!(login, Message::Login(Login { imei, model: None }));
        let sent = Fix { at_ms: secs * 1000, lat, lon, speed_kmh: speed, course_deg: course, valid: true, satellites: Some(9), ignition: Some(true) };
        for (bytes, alarm) in [
            (device::fix(&sent, serial), None),
            (device::alarm(&sent, code, serial), Some(match code { 0x01 => Alarm::Sos, 0x02 => Alarm::PowerCut, 0x03 => Alarm::Vibration, 0x0E => Alarm::LowBattery, _ => Alarm::Tamper })),
        ] {
            let parsed = Frame::parse(&bytes).expect("frame");
            prop_assert_eq!(parsed.serial, serial);
            let Message::Report(Report { fix: Some(got), alarm: got_alarm, .. }) = decode(&parsed).expect("decodes") else {
                panic!("not a fix");
            };
            prop_assert!((got.lat - lat).abs() < 1e-6 && (got.lon - lon).abs() < 1e-6, "{:?}", got);
            prop_assert_eq!((got.at_ms, got.speed_kmh, got.course_deg, got.valid, got.ignition), (secs * 1000, speed, course, true, Some(true)));
            prop_assert_eq!(got_alarm, alarm);
        }
    }
}
