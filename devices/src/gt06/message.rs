//! # GT06 messages: a frame's content decoded into what TagWatch uses.
//!
//! Pure. Each message kind is read from the front for the fields TagWatch uses; trailing fields
//! (cell towers, odometers, model-specific extensions) are not read, so a model that appends
//! more still decodes. A message too short for its fields, with an impossible date or a
//! position off the earth is an error naming what is wrong, never a guess.

use super::frame::Frame;
use super::protocol as p;
use crate::report::{Alarm, Fix, Imei, Login, Message, Power, Report};
use nom::number::complete::{be_i16, be_u16, be_u32, be_u8};
use nom::Parser;

/// What is wrong with a message's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message 0x{protocol:02x} ends before its {field}")]
    Truncated { protocol: u8, field: &'static str },
    #[error("IMEI digits {0} are not 15 decimal digits")]
    Imei(String),
    #[error("date {0} is not a calendar date and time")]
    Time(String),
    #[error("position ({lat}, {lon}) is not on earth")]
    Position { lat: String, lon: String },
}

impl DecodeError {
    /// A short stable name, the `reason` label of the reject counters.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Imei(_) => "imei",
            DecodeError::Time(_) => "time",
            DecodeError::Position { .. } => "position",
        }
    }
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

/// Reads a message's content front to back.
struct Cursor<'a> {
    rest: &'a [u8],
    protocol: u8,
}

impl<'a> Cursor<'a> {
    fn new(frame: &Frame<'a>) -> Self {
        Self {
            rest: frame.content,
            protocol: frame.protocol,
        }
    }

    fn read<T>(
        &mut self,
        field: &'static str,
        mut parser: impl Parser<&'a [u8], Output = T, Error = NomError<'a>>,
    ) -> Result<T, DecodeError> {
        let (rest, value) = parser
            .parse(self.rest)
            .map_err(|_| DecodeError::Truncated {
                protocol: self.protocol,
                field,
            })?;
        self.rest = rest;
        Ok(value)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.read(field, be_u8)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.read(field, be_u16)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.read(field, be_u32)
    }

    fn skip(&mut self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        self.read(field, nom::bytes::complete::take(n)).map(|_| ())
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }
}

/// Decodes one frame's message.
pub fn decode(frame: &Frame<'_>) -> Result<Message, DecodeError> {
    let mut c = Cursor::new(frame);
    let report = match (frame.extended, frame.protocol) {
        (_, p::LOGIN) => return login(&mut c),
        (_, p::TIME_REQUEST) => return Ok(Message::TimeRequest),
        (false, p::STATUS) => status_only(&mut c)?,
        (false, p::HEARTBEAT) => heartbeat(&mut c)?,
        (false, p::GPS | p::GPS_LBS_1 | p::GPS_LBS_6 | p::GPS_PHONE | p::GPS_LBS_EXTEND)
        | (false, p::GPS_LBS_2 | p::GPS_LBS_3 | p::GPS_LBS_4 | p::GPS_LBS_5 | p::GPS_LBS_7)
        | (_, p::GPS_LBS_8) => Report {
            fix: Some(gps(&mut c, GpsLayout::STANDARD)?),
            ..Report::default()
        },
        (
            false,
            p::GPS_LBS_STATUS_1
            | p::GPS_LBS_STATUS_2
            | p::GPS_LBS_STATUS_3
            | p::GPS_LBS_STATUS_4
            | p::FENCE_MULTI,
        ) => gps_lbs_status(&mut c)?,
        (false, p::LBS_STATUS) => {
            lbs_cell(&mut c)?;
            status_block(&mut c)?
        }
        (false, p::LBS_ALARM) => {
            lbs_cell_long(&mut c)?;
            status_block(&mut c)?
        }
        (false, p::X1_GPS) => {
            c.skip(4, "data and alarm flags")?;
            Report {
                fix: Some(gps(&mut c, GpsLayout::STANDARD)?),
                ..Report::default()
            }
        }
        (false, p::ALARM) => alarm_message(&mut c)?,
        (false, p::STATUS_2) if c.remaining() != TRX16I_CONTENT_LEN => status_modules(&mut c)?,
        (false, p::GPS_LBS_STATUS_5) if c.remaining() == LW4G_CONTENT_LEN => Report {
            fix: Some(gps(&mut c, GpsLayout::STANDARD)?),
            ..Report::default()
        },
        (false, p::STRING) => string_reply(&mut c)?,
        (true, p::STRING_INFO) => string_info(&mut c)?,
        (false, p::INFO) => Report {
            power: Power {
                external_v: Some(c.read("voltage", be_i16)? as f32 / 100.0),
                ..Power::default()
            },
            ..Report::default()
        },
        (true, p::INFO) => info_extended(&mut c)?,
        (true, p::GPS_LBS_STATUS_4 | p::AZ735_ALARM) => az735(&mut c)?,
        (true, p::GPS_MODULAR) => modular(&mut c)?,
        (true, p::DEVICE_STATUS) => device_status(&mut c)?,
        _ => return Ok(Message::Unused),
    };
    Ok(Message::Report(report))
}

/// Login: the IMEI as 16 BCD digits (a leading 0), then the model code when present.
fn login(c: &mut Cursor<'_>) -> Result<Message, DecodeError> {
    let digits = c.read("IMEI", nom::bytes::complete::take(8usize))?;
    let text: String = digits.iter().map(|b| format!("{b:02x}")).collect();
    let imei = text
        .strip_prefix('0')
        .and_then(Imei::parse)
        .ok_or(DecodeError::Imei(text.clone()))?;
    let model = if c.remaining() >= 2 {
        Some(c.u16("model")?)
    } else {
        None
    };
    Ok(Message::Login(Login { imei, model }))
}

/// How a GPS block is laid out: Traccar's `decodeGps` flags.
#[derive(Debug, Clone, Copy)]
struct GpsLayout {
    /// A byte before the block saying its length (0: no GPS data).
    length_byte: bool,
    satellites: bool,
    speed: bool,
}

impl GpsLayout {
    const STANDARD: Self = Self {
        length_byte: false,
        satellites: true,
        speed: true,
    };
}

/// The date and GPS block: `yy mm dd hh mi ss`, satellites, latitude and longitude in
/// 1/1,800,000 degree, speed km/h, and a word of course (10 bits) and flags.
fn gps(c: &mut Cursor<'_>, layout: GpsLayout) -> Result<Fix, DecodeError> {
    let at_ms = date(c)?;
    if layout.length_byte && c.u8("GPS length")? == 0 {
        return Ok(Fix {
            at_ms,
            lat: 0.0,
            lon: 0.0,
            speed_kmh: 0,
            course_deg: 0,
            valid: false,
            satellites: None,
            ignition: None,
        });
    }
    let satellites = if layout.satellites {
        Some(c.u8("satellites")? & 0x0f)
    } else {
        None
    };
    let lat = f64::from(c.u32("latitude")?) / 1_800_000.0;
    let lon = f64::from(c.u32("longitude")?) / 1_800_000.0;
    let speed_kmh = if layout.speed {
        u16::from(c.u8("speed")?)
    } else {
        0
    };
    let flags = c.u16("course and status")?;
    position_from(at_ms, lat, lon, speed_kmh, flags, satellites)
}

/// A fix from its parts: `flags` is GT06's course-and-status word.
fn position_from(
    at_ms: i64,
    lat: f64,
    lon: f64,
    speed_kmh: u16,
    flags: u16,
    satellites: Option<u8>,
) -> Result<Fix, DecodeError> {
    // Bit 10 set: northern latitude; bit 11 set: western longitude.
    let lat = if flags & 0x0400 != 0 { lat } else { -lat };
    let lon = if flags & 0x0800 != 0 { -lon } else { lon };
    if lat.abs() > 90.0 || lon.abs() > 180.0 {
        return Err(DecodeError::Position {
            lat: format!("{lat:.6}"),
            lon: format!("{lon:.6}"),
        });
    }
    Ok(Fix {
        at_ms,
        lat,
        lon,
        speed_kmh,
        course_deg: (flags & 0x03ff) % 360,
        valid: flags & 0x1000 != 0,
        satellites,
        // Bit 14: the device reports ignition; bit 15: it is on.
        ignition: (flags & 0x4000 != 0).then_some(flags & 0x8000 != 0),
    })
}

/// `yy mm dd hh mi ss`, binary, UTC.
fn date(c: &mut Cursor<'_>) -> Result<i64, DecodeError> {
    let mut parts = [0u8; 6];
    for part in &mut parts {
        *part = c.u8("date")?;
    }
    let [yy, mm, dd, hh, mi, ss] = parts;
    let shown = || format!("{yy:02}-{mm:02}-{dd:02} {hh:02}:{mi:02}:{ss:02}");
    let month = time::Month::try_from(mm).map_err(|_| DecodeError::Time(shown()))?;
    let date = time::Date::from_calendar_date(2000 + i32::from(yy), month, dd)
        .map_err(|_| DecodeError::Time(shown()))?;
    let at = date
        .with_hms(hh, mi, ss)
        .map_err(|_| DecodeError::Time(shown()))?
        .assume_utc();
    Ok(at.unix_timestamp() * 1000)
}

/// GPS, then a cell (with a length byte), then the status block.
///
/// The VXT01 (told apart by its length, as Traccar does) has no cell length byte and flags its
/// alarms in the terminal information only; the SEEWORLD's cell id is four bytes.
fn gps_lbs_status(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let single = c.protocol == p::GPS_LBS_STATUS_1;
    let vxt01 = single && c.remaining() == VXT01_CONTENT_LEN;
    let seeworld = single && c.remaining() == SEEWORLD_CONTENT_LEN;
    let fix = gps(c, GpsLayout::STANDARD)?;
    if vxt01 {
        lbs_cell(c)?;
    } else {
        // A cell is 8 bytes after its length byte; a longer one says so and the rest is skipped.
        let length = usize::from(c.u8("cell length")?);
        if length > 0 {
            lbs_cell(c)?;
            if seeworld {
                c.skip(1, "cell id")?;
            }
            c.skip(length.saturating_sub(9), "cell extension")?;
        } else if c
            .rest
            .get(9..45)
            .is_some_and(|zeros| zeros.iter().all(|&b| b == 0))
        {
            // No cell, and the space for one zero-filled (45 bytes, as Traccar skips them).
            c.skip(45, "empty cell")?;
        }
    }
    let report = status_block_with(c, !vxt01)?;
    Ok(Report {
        fix: Some(fix),
        ..report
    })
}

/// Content length of the SEEWORLD's 0x16 (frame length 0x26).
const SEEWORLD_CONTENT_LEN: usize = 0x26 - 5;
/// Content length of the VXT01's messages 0x12 and 0x16 (frame length 0x24).
const VXT01_CONTENT_LEN: usize = 0x24 - 5;

/// A cell without a length byte: MCC, MNC (two bytes when the MCC's top bit says so), LAC and
/// a three-byte cell id.
fn lbs_cell(c: &mut Cursor<'_>) -> Result<(), DecodeError> {
    let mcc = c.u16("MCC")?;
    c.skip(if mcc & 0x8000 != 0 { 2 } else { 1 }, "MNC")?;
    c.skip(2 + 3, "LAC and cell id")
}

/// The long cell of the GK310 family: four-byte LAC and eight-byte cell id.
fn lbs_cell_long(c: &mut Cursor<'_>) -> Result<(), DecodeError> {
    let mcc = c.u16("MCC")?;
    c.skip(if mcc & 0x8000 != 0 { 2 } else { 1 }, "MNC")?;
    c.skip(4 + 8, "LAC and cell id")
}

/// The status message (0x13) a device sends as its heartbeat. The OBD6's is longer (Traccar
/// tells it apart by its length): a two-byte signal word, the alarm, language, battery level,
/// mode, then the external voltage.
fn status_only(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    if c.remaining() < OBD6_MIN_CONTENT_LEN {
        return status_block(c);
    }
    let info = c.u8("terminal information")?;
    c.u16("signal")?;
    let code = c.u8("alarm")?;
    c.u8("language")?;
    let level = c.u8("battery level")?;
    c.u8("mode")?;
    let external_v = f32::from(c.u16("voltage")?) / 100.0;
    Ok(Report {
        alarm: alarm_code(code).or_else(|| terminal_alarm(info)),
        power: Power {
            external_v: Some(external_v),
            battery_pct: (level <= 100).then_some(level),
            ..Power::default()
        },
        ..Report::default()
    })
}

/// The shortest OBD6 status content (frame length 0x13).
const OBD6_MIN_CONTENT_LEN: usize = 0x13 - 5;

/// Terminal information, battery level (0-6 or a percentage), GSM signal, then the alarm code.
fn status_block(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    status_block_with(c, true)
}

/// [`status_block`]; without `alarm_byte` only the terminal information's bits say the alarm.
fn status_block_with(c: &mut Cursor<'_>, alarm_byte: bool) -> Result<Report, DecodeError> {
    let info = c.u8("terminal information")?;
    let level = c.u8("battery level")?;
    c.u8("GSM signal")?;
    let code = if alarm_byte && c.remaining() > 0 {
        c.u8("alarm")?
    } else {
        0
    };
    Ok(Report {
        alarm: alarm_code(code).or_else(|| terminal_alarm(info)),
        power: Power {
            battery_pct: battery_level(level),
            ..Power::default()
        },
        ..Report::default()
    })
}

/// The 0-6 scale of most models, or a percentage from those that send one.
fn battery_level(level: u8) -> Option<u8> {
    match level {
        0..=6 => Some((u16::from(level) * 100 / 6) as u8),
        7..=100 => Some(level),
        _ => None,
    }
}

/// Bits 3-5 of the terminal information byte.
fn terminal_alarm(info: u8) -> Option<Alarm> {
    match (info >> 3) & 0x07 {
        1 => Some(Alarm::Vibration),
        2 => Some(Alarm::PowerCut),
        3 => Some(Alarm::LowBattery),
        4 => Some(Alarm::Sos),
        6 => Some(Alarm::Geofence),
        7 => Some(Alarm::Removed),
        _ => None,
    }
}

/// The alarm byte of status messages, as Concox's table and Traccar's defaults read it.
fn alarm_code(code: u8) -> Option<Alarm> {
    Some(match code {
        0x00 => return None,
        0x01 => Alarm::Sos,
        0x02 => Alarm::PowerCut,
        0x03 | 0x09 => Alarm::Vibration,
        0x04 => Alarm::GeofenceEnter,
        0x05 => Alarm::GeofenceExit,
        0x06 => Alarm::Overspeed,
        0x0E | 0x0F | 0x19 => Alarm::LowBattery,
        0x11 => Alarm::PowerOff,
        0x0C | 0x13 | 0x25 | 0x32 => Alarm::Tamper,
        0x14 => Alarm::Door,
        0x18 => Alarm::Removed,
        0x1A | 0x27 | 0x28 | 0xF1 => Alarm::Braking,
        0x1B | 0x2A | 0x2B | 0x2E => Alarm::Cornering,
        0x23 => Alarm::FallDown,
        0x26 | 0x29 | 0xF0 => Alarm::Acceleration,
        0x2C | 0xF2 => Alarm::Accident,
        0x30 => Alarm::Jamming,
        other => Alarm::Other(u16::from(other)),
    })
}

/// The GK310 heartbeat (0x23): status bits, then the battery in 1/100 V when present.
fn heartbeat(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    c.u8("status")?;
    let battery_v = if c.remaining() >= 2 {
        Some(f32::from(c.u16("battery")?) / 100.0)
    } else {
        None
    };
    Ok(Report {
        power: Power {
            battery_v,
            ..Power::default()
        },
        ..Report::default()
    })
}

/// The JC100 alarm message (0x95): a fix without satellites or speed when the message is long
/// enough for one, else only a date; then the event code.
///
/// The JC400 (its content starts with `FF FF`) adds a version, satellites, a two-byte speed after
/// the course word, and the external voltage.
fn alarm_message(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let with_fix = c.remaining() > 7;
    let mut external_v = None;
    let fix = if with_fix && c.rest.starts_with(&[0xFF, 0xFF]) {
        c.skip(3, "marker and version")?;
        let at_ms = date(c)?;
        let satellites = c.u8("satellites")? & 0x0f;
        let lat = f64::from(c.u32("latitude")?) / 1_800_000.0;
        let lon = f64::from(c.u32("longitude")?) / 1_800_000.0;
        let flags = c.u16("course and status")?;
        let speed = c.u16("speed")?;
        external_v = Some(f32::from(c.u16("voltage")?) / 10.0);
        Some(position_from(
            at_ms,
            lat,
            lon,
            speed,
            flags,
            Some(satellites),
        )?)
    } else if with_fix {
        let at_ms = date(c)?;
        let lat = f64::from(c.u32("latitude")?) / 1_800_000.0;
        let lon = f64::from(c.u32("longitude")?) / 1_800_000.0;
        let flags = c.u16("course and status")?;
        Some(position_from(at_ms, lat, lon, 0, flags, None)?)
    } else {
        date(c)?;
        None
    };
    let alarm = match c.u8("event")? {
        0x01 if with_fix => Alarm::Sos,
        0x0E => Alarm::LowBattery,
        0x80 => Alarm::Vibration,
        0x87 => Alarm::Overspeed,
        0x88 => Alarm::PowerCut,
        0x90 => Alarm::Acceleration,
        0x91 => Alarm::Braking,
        0x92 => Alarm::Cornering,
        0x93 => Alarm::Accident,
        _ => Alarm::General,
    };
    Ok(Report {
        fix,
        alarm: Some(alarm),
        power: Power {
            external_v,
            ..Power::default()
        },
        ..Report::default()
    })
}

/// The Jimi 4G status (0x36): the status block, language, then typed modules; 0x0018 is the
/// battery in 1/100 V, 0x006A its percentage.
fn status_modules(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let mut report = status_block(c)?;
    c.u8("language")?;
    while c.remaining() >= 3 {
        let module = c.u16("module type")?;
        let length = usize::from(c.u8("module length")?);
        let body = c.read("module", nom::bytes::complete::take(length))?;
        match (module, body) {
            (0x0018, [high, low]) => {
                report.power.battery_v = Some(f32::from(u16::from_be_bytes([*high, *low])) / 100.0)
            }
            (0x006A, [pct]) => report.power.battery_pct = Some(*pct),
            _ => {}
        }
    }
    Ok(report)
}

/// Content length of the TRX16i's 0x36, a different message under the same number.
const TRX16I_CONTENT_LEN: usize = 0x35 - 5;
/// Content length of the LW4G's 0xA2 (a fix; other models' 0xA2 is a Wi-Fi scan).
const LW4G_CONTENT_LEN: usize = 0x40 - 5;

/// A command's answer (0x15): length, a four-byte server flag, the text.
fn string_reply(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let length = usize::from(c.u8("text length")?);
    if length < 4 {
        return Ok(Report::default());
    }
    c.skip(4, "server flag")?;
    let text = c.read("text", nom::bytes::complete::take(length - 4))?;
    Ok(text_report(String::from_utf8_lossy(text).into_owned()))
}

/// A command's answer in the extended frame (0x21): server flag, encoding (1 = ASCII, else
/// UTF-16BE), the text.
fn string_info(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    c.skip(4, "server flag")?;
    let encoding = c.u8("encoding")?;
    let bytes = std::mem::take(&mut c.rest);
    let text = if encoding == 1 {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    };
    Ok(text_report(text))
}

fn text_report(text: String) -> Report {
    if let Some(fix) = current_position(&text) {
        return Report {
            fix: Some(fix),
            ..Report::default()
        };
    }
    // An ICCID announcement is not an answer to anything.
    let reply_text = (!text.starts_with("<ICCID:")).then_some(text);
    Report {
        reply_text,
        ..Report::default()
    }
}

/// The answer to a position request:
/// `Current position!Lat:N54.739332,Lon:E25.273270,Course:126.53,Speed:0.0000,DateTime:2017-05-26  10:27:47`.
fn current_position(text: &str) -> Option<Fix> {
    let rest = text.strip_prefix("Current position!")?;
    let field = |name: &str| {
        rest.split(',')
            .find_map(|part| part.strip_prefix(name))
            .map(str::trim)
    };
    let signed = |value: &str, negative: char| -> Option<f64> {
        let (hemisphere, number) = value.split_at_checked(1)?;
        let number: f64 = number.parse().ok()?;
        Some(if hemisphere.starts_with(negative) {
            -number
        } else {
            number
        })
    };
    let lat = signed(field("Lat:")?, 'S')?;
    let lon = signed(field("Lon:")?, 'W')?;
    let course: f64 = field("Course:")?.parse().ok()?;
    let speed: f64 = field("Speed:")?.parse().ok()?;
    let when = field("DateTime:")?;
    let (day, clock) = when.split_once(' ')?;
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let at = time::PrimitiveDateTime::parse(&format!("{day} {}", clock.trim()), &format)
        .ok()?
        .assume_utc();
    if lat.abs() > 90.0
        || lon.abs() > 180.0
        || !(0.0..360.0).contains(&course)
        || !(0.0..1000.0).contains(&speed)
    {
        return None;
    }
    Some(Fix {
        at_ms: at.unix_timestamp() * 1000,
        lat,
        lon,
        speed_kmh: speed.round() as u16,
        course_deg: course as u16,
        valid: true,
        satellites: None,
        ignition: None,
    })
}

/// The extended information message (0x94): subtype 0x0B with two bytes is the external
/// voltage (with one byte, the network technology).
fn info_extended(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let subtype = c.u8("information type")?;
    let mut report = Report::default();
    if subtype == 0x0B && c.remaining() == 2 {
        report.power.external_v = Some(f32::from(c.u16("voltage")?) / 100.0);
    }
    Ok(report)
}

/// AZ735 position and alarm messages (extended 0x32 and 0x33): GPS with a length byte, a cell
/// with one, signal, extra cells and Wi-Fi (skipped), then a status byte.
fn az735(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let alarm_message = c.protocol == p::AZ735_ALARM;
    let fix = gps(
        c,
        GpsLayout {
            length_byte: true,
            ..GpsLayout::STANDARD
        },
    )?;
    let cell = usize::from(c.u8("cell length")?);
    if cell > 0 {
        c.skip(cell - 1, "cell")?;
        c.u8("signal")?;
    }
    let extra_cells = usize::from(c.u8("extra cells length")?);
    c.skip(extra_cells, "extra cells")?;
    let wifi = usize::from(c.u8("Wi-Fi length")?);
    c.skip(wifi, "Wi-Fi")?;
    let status = c.u8("status")?;
    let alarm = match status {
        0xA2 | 0xA3 if alarm_message => Some(Alarm::LowBattery),
        0xA4 if alarm_message => Some(Alarm::General),
        0xA5 if alarm_message => Some(Alarm::Door),
        _ => None,
    };
    Ok(Report {
        fix: fix.valid.then_some(fix),
        alarm,
        ..Report::default()
    })
}

/// The modular message (extended 0x70): typed modules, among them the fix (0x33), the battery
/// (0x18) and events (0x2B).
fn modular(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    let mut report = Report::default();
    while c.remaining() >= 4 {
        let module = c.u16("module type")?;
        let length = usize::from(c.u16("module length")?);
        let body = c.read("module", nom::bytes::complete::take(length))?;
        let mut m = Cursor {
            rest: body,
            protocol: c.protocol,
        };
        match module {
            0x18 => report.power.battery_v = Some(f32::from(m.u16("battery")?) / 100.0),
            0x2B => {
                report.alarm = match m.u8("event")? {
                    0x11 => Some(Alarm::LowBattery),
                    0x13 => Some(Alarm::PowerCut),
                    0x14 => Some(Alarm::Removed),
                    _ => report.alarm,
                }
            }
            0x33 => {
                let at_ms = i64::from(m.u32("time")?) * 1000;
                let satellites = m.u8("satellites")?;
                m.read("altitude", be_i16)?;
                let lat = f64::from(m.u32("latitude")?) / 1_800_000.0;
                let lon = f64::from(m.u32("longitude")?) / 1_800_000.0;
                let speed = u16::from(m.u8("speed")?);
                let flags = m.u16("course and status")?;
                report.fix = Some(position_from(
                    at_ms,
                    lat,
                    lon,
                    speed,
                    flags,
                    Some(satellites),
                )?);
            }
            _ => {}
        }
    }
    Ok(report)
}

/// The device status message (extended 0xF1): a time, then typed statuses; 0x0005 is the
/// external voltage.
fn device_status(c: &mut Cursor<'_>) -> Result<Report, DecodeError> {
    c.u32("time")?;
    let mut report = Report::default();
    while c.remaining() >= 3 {
        let id = c.u16("status id")?;
        let length = usize::from(c.u8("status length")?);
        let body = c.read("status", nom::bytes::complete::take(length))?;
        if id == 0x0005 && body.len() >= 2 {
            report.power.external_v =
                Some(f32::from(u16::from_be_bytes([body[0], body[1]])) / 100.0);
        }
    }
    Ok(report)
}
