//! # What the server sends a GT06 device: acknowledgements, the time, commands.
//!
//! Pure. An acknowledgement repeats the message's protocol number and serial number with no
//! content, as Concox's document and Traccar do; the time answer carries UTC as
//! `yy mm dd hh mi ss`; a command (0x80) carries a server flag the answer repeats, and ASCII text.

use super::frame::{encode, encode_in, Frame};
use super::protocol as p;

/// The acknowledgement a device waits for after `frame`, if it waits for one: same protocol
/// number and serial, no content, in the framing the device expects. Logins, heartbeats, fixes,
/// alarms and status are acknowledged; the echoes of commands are not (Traccar's rule), nor the
/// extended messages other than the three whose senders wait for it.
pub fn ack(frame: &Frame<'_>) -> Option<Vec<u8>> {
    let extended_ack = match (frame.extended, frame.protocol) {
        (_, p::COMMAND | p::COMMAND_1 | p::COMMAND_2 | p::TIME_REQUEST) => return None,
        (false, _) | (true, p::GPS_MODULAR | p::DEVICE_STATUS) => false,
        (true, p::GPS_LBS_STATUS_4 | p::AZ735_ALARM) => true,
        (true, _) => return None,
    };
    let mut out = Vec::with_capacity(11);
    encode_in(extended_ack, frame.protocol, &[], frame.serial, &mut out);
    Some(out)
}

/// Answers a time request with `unix_s` as UTC `yy mm dd hh mi ss`.
pub fn time(unix_s: i64, serial: u16) -> Vec<u8> {
    let at = time::OffsetDateTime::from_unix_timestamp(unix_s)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let content = [
        (at.year() - 2000).clamp(0, 255) as u8,
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
    ];
    let mut out = Vec::with_capacity(16);
    encode(p::TIME_REQUEST, &content, serial, &mut out);
    out
}

/// The longest command text: the length byte counts the flag and the text.
pub const MAX_COMMAND_LEN: usize = 255 - 4;

/// A command (0x80): length of what follows, the four-byte server flag the device repeats in
/// its answer, the ASCII text. `None` if the text is too long for the length byte or not ASCII.
pub fn command(text: &str, server_flag: u32, serial: u16) -> Option<Vec<u8>> {
    if text.len() > MAX_COMMAND_LEN || !text.is_ascii() {
        return None;
    }
    let mut content = Vec::with_capacity(5 + text.len());
    content.push((4 + text.len()) as u8);
    content.extend_from_slice(&server_flag.to_be_bytes());
    content.extend_from_slice(text.as_bytes());
    let mut out = Vec::with_capacity(content.len() + 10);
    encode(p::COMMAND, &content, serial, &mut out);
    Some(out)
}
