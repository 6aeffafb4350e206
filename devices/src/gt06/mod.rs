//! # GT06: the protocol of Concox GPS trackers and their many clones.
//!
//! Binary over TCP. A frame is `78 78`, a one-byte length, the protocol number, its content, a
//! serial number, a CRC-ITU and `0D 0A`; or `79 79` with a two-byte length for the longer
//! messages. The device logs in with its IMEI, then sends fixes, heartbeats and alarms, each of
//! which it expects to see acknowledged with its serial number. The server sends commands (for
//! the engine cut-off) as message 0x80 and the device answers as text.
//!
//! - [`frame`]: the byte stream cut into frames, bounded, CRC checked.
//! - [`message`]: a frame's content decoded into a [`crate::Message`].
//! - [`reply`]: the acknowledgements, the time and the commands the server sends.
//! - [`device`]: the messages a device sends (the simulator, benches and tests speak with it).
//!
//! Decoded as Concox documents it and as Traccar's decoder (the reference most deployments use)
//! reads it, for the message kinds that carry what TagWatch uses: logins, GPS fixes, status and
//! heartbeats, alarms, power, and command replies. Variants that only some models send, and
//! that Traccar tells apart by a per-device model setting, are read the standard way
//! (`docs/DEVICES.md` lists them).

pub mod device;
pub mod frame;
pub mod message;
pub mod reply;

pub use frame::{Frame, FrameCodec, FrameError, MAX_FRAME_LEN};
pub use message::{decode, DecodeError};

/// Protocol numbers TagWatch reads or sends.
pub mod protocol {
    pub const LOGIN: u8 = 0x01;
    pub const GPS: u8 = 0x10;
    pub const GPS_LBS_6: u8 = 0x11;
    pub const GPS_LBS_1: u8 = 0x12;
    pub const STATUS: u8 = 0x13;
    pub const STRING: u8 = 0x15;
    pub const GPS_LBS_STATUS_1: u8 = 0x16;
    pub const LBS_STATUS: u8 = 0x19;
    pub const GPS_PHONE: u8 = 0x1A;
    pub const GPS_LBS_EXTEND: u8 = 0x1E;
    pub const STRING_INFO: u8 = 0x21;
    pub const GPS_LBS_2: u8 = 0x22;
    pub const HEARTBEAT: u8 = 0x23;
    pub const GPS_LBS_STATUS_2: u8 = 0x26;
    pub const GPS_LBS_STATUS_3: u8 = 0x27;
    pub const GPS_LBS_4: u8 = 0x2D;
    pub const GPS_LBS_5: u8 = 0x31;
    pub const GPS_LBS_STATUS_4: u8 = 0x32;
    pub const AZ735_ALARM: u8 = 0x33;
    pub const X1_GPS: u8 = 0x34;
    pub const GPS_LBS_3: u8 = 0x37;
    pub const STATUS_2: u8 = 0x36;
    pub const GPS_LBS_8: u8 = 0x38;
    pub const GPS_MODULAR: u8 = 0x70;
    pub const COMMAND: u8 = 0x80;
    pub const COMMAND_1: u8 = 0x81;
    pub const COMMAND_2: u8 = 0x82;
    pub const TIME_REQUEST: u8 = 0x8A;
    pub const INFO: u8 = 0x94;
    pub const ALARM: u8 = 0x95;
    pub const GPS_LBS_7: u8 = 0xA0;
    pub const GPS_LBS_STATUS_5: u8 = 0xA2;
    pub const FENCE_MULTI: u8 = 0xA4;
    pub const LBS_ALARM: u8 = 0xA5;
    pub const DEVICE_STATUS: u8 = 0xF1;
}
