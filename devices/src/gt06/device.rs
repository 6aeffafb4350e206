//! # The device's side of GT06: the messages a tracker sends.
//!
//! For the simulator's trackers, the benches and the tests, which speak to the server as a
//! device does. Written with [`super::frame::encode`], so what they send is what the decoder
//! reads (the corpus test checks the decoder against Traccar's frames independently).

use super::frame::encode;
use super::protocol as p;
use crate::report::{Fix, Imei};

/// A login (0x01): the IMEI as 16 BCD digits with a leading 0.
pub fn login(imei: Imei, serial: u16) -> Vec<u8> {
    let digits = format!("0{imei}");
    let bcd: Vec<u8> = digits
        .as_bytes()
        .chunks(2)
        .map(|pair| ((pair[0] - b'0') << 4) | (pair[1] - b'0'))
        .collect();
    frame(p::LOGIN, &bcd, serial)
}

/// A status heartbeat (0x13): terminal information, battery level 0-6, GSM signal, alarm code
/// (0: none), language.
pub fn heartbeat(battery_level: u8, serial: u16) -> Vec<u8> {
    frame(
        p::STATUS,
        &[0x44, battery_level.min(6), 0x04, 0x00, 0x02],
        serial,
    )
}

/// A fix with a cell (0x12).
pub fn fix(fix: &Fix, serial: u16) -> Vec<u8> {
    let mut content = gps_block(fix);
    content.extend_from_slice(&CELL);
    frame(p::GPS_LBS_1, &content, serial)
}

/// An alarm with its fix (0x16): `code` as in the status alarm byte (0x01 SOS, 0x02 power cut,
/// 0x03 vibration, 0x0E low battery, 0x13 tamper).
pub fn alarm(fix: &Fix, code: u8, serial: u16) -> Vec<u8> {
    let mut content = gps_block(fix);
    content.push(1 + CELL.len() as u8);
    content.extend_from_slice(&CELL);
    content.extend_from_slice(&[0x44, 0x05, 0x04, code, 0x02]);
    frame(p::GPS_LBS_STATUS_1, &content, serial)
}

/// A command's answer (0x15) carrying the command's server flag and the device's text.
pub fn command_reply(text: &str, server_flag: u32, serial: u16) -> Vec<u8> {
    let text = &text.as_bytes()[..text.len().min(200)];
    let mut content = vec![(4 + text.len()) as u8];
    content.extend_from_slice(&server_flag.to_be_bytes());
    content.extend_from_slice(text);
    frame(p::STRING, &content, serial)
}

/// A made-up cell: MCC 460 (China), MNC 0, LAC 0x2866, cell 0x000EEE.
const CELL: [u8; 8] = [0x01, 0xCC, 0x00, 0x28, 0x66, 0x00, 0x0E, 0xEE];

/// Date, satellites, latitude, longitude, speed and the course-and-status word.
fn gps_block(fix: &Fix) -> Vec<u8> {
    let at = time::OffsetDateTime::from_unix_timestamp(fix.at_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut out = vec![
        (at.year() - 2000).clamp(0, 255) as u8,
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        0xC0 | fix.satellites.unwrap_or(9).min(15),
    ];
    let scaled = |degrees: f64| (degrees.abs() * 1_800_000.0).round() as u32;
    out.extend_from_slice(&scaled(fix.lat).to_be_bytes());
    out.extend_from_slice(&scaled(fix.lon).to_be_bytes());
    out.push(fix.speed_kmh.min(255) as u8);
    let mut flags = fix.course_deg % 360;
    if fix.lat >= 0.0 {
        flags |= 0x0400;
    }
    if fix.lon < 0.0 {
        flags |= 0x0800;
    }
    if fix.valid {
        flags |= 0x1000;
    }
    if let Some(on) = fix.ignition {
        flags |= 0x4000 | if on { 0x8000 } else { 0 };
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out
}

fn frame(protocol: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 10);
    encode(protocol, content, serial, &mut out);
    out
}
