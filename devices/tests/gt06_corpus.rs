//! Every GT06 frame of Traccar's decoder tests (`tests/data/gt06-frames.tsv`, copied from
//! `shared/conformance/`), decoded by TagWatch: each value that suite asserts and TagWatch
//! represents (position, time, speed, course, alarm, power, battery; IMEIs in the login test
//! below) must match. A few assertions are knowingly not met; each is listed in [`NOT_MET`] with
//! its reason, and the test fails if one of them starts to pass (the list would be stale) or if
//! any other assertion fails.

use tagwatch_devices::gt06::frame::{check, FrameError};
use tagwatch_devices::gt06::{decode, Frame, MAX_FRAME_LEN};
use tagwatch_devices::{Alarm, Message, Report};

const FRAMES: &str = include_str!("data/gt06-frames.tsv");
const CRC_MISMATCH: &str = include_str!("data/gt06-crc-mismatch.txt");

/// Assertions TagWatch does not meet, by the frame's first hex digits, and why.
const NOT_MET: &[(&str, &str)] = &[
    ("78782e2416061a10", "a position from cell towers only (0x24): TagWatch places vehicles by GPS and by stations, not by cell"),
    ("78780a13560604f0", "LW4G-4B model setting: the status word's voltage; TagWatch has no per-device model"),
    ("78782516180516150812c8", "LW4G-4B model setting: 0x19 means acceleration, not low battery"),
    ("78780a134506560b", "SEEWORLD model setting: voltage in the alarm byte"),
    ("78780a13460b1204", "R11 model setting: voltage instead of the battery level"),
    ("78783c2201035778964877", "NT20 model setting: location source and IMEI before the date (read as a bad date and refused)"),
    ("787825161a011c14", "G18 model setting: 0x30 means braking, not jamming"),
    ("7878271208667030", "QH302R model setting: IMEI before the date (read as a bad date and refused)"),
    ("78783536190c1d0f1724", "VL103 model setting: 0x36 read as a fix, not as the TRX16i's message"),
    ("78783536190c1d0f2806", "VL103 model setting: 0x36 read as a fix, not as the TRX16i's message"),
];

/// A frame's outcome: the messages of the whole frames in it, or the first framing error.
fn frames_of(bytes: &[u8], checked: bool) -> Result<Vec<Message>, String> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let total = check(rest, MAX_FRAME_LEN).map_err(|e| e.to_string())?;
        let parse = if checked {
            Frame::parse
        } else {
            Frame::parse_unchecked
        };
        let frame = parse(&rest[..total]).map_err(|e| e.to_string())?;
        out.push(decode(&frame).map_err(|e| e.to_string())?);
        rest = &rest[total..];
    }
    Ok(out)
}

fn report(messages: &[Message]) -> Option<&Report> {
    messages.iter().find_map(|m| match m {
        Message::Report(r) => Some(r),
        _ => None,
    })
}

fn traccar_alarm(name: &str) -> Option<Alarm> {
    Some(match name {
        "ALARM_SOS" => Alarm::Sos,
        "ALARM_TAMPERING" => Alarm::Tamper,
        "ALARM_LOW_BATTERY" => Alarm::LowBattery,
        "ALARM_REMOVING" => Alarm::Removed,
        "ALARM_GENERAL" => Alarm::General,
        "ALARM_ACCELERATION" => Alarm::Acceleration,
        "ALARM_BRAKING" => Alarm::Braking,
        "ALARM_ACCIDENT" => Alarm::Accident,
        "ALARM_POWER_CUT" => Alarm::PowerCut,
        "ALARM_VIBRATION" => Alarm::Vibration,
        _ => return None,
    })
}

fn close(a: Option<f32>, b: f64) -> bool {
    a.is_some_and(|a| (f64::from(a) - b).abs() < 0.006)
}

/// Checks one assertion; `Ok(None)` when it is about something TagWatch does not represent.
fn judge(messages: &[Message], assertion: &str) -> Result<Option<&'static str>, String> {
    // Traccar's position check does not look at the fix's validity (TagWatch places only valid
    // fixes, but decodes the others).
    let fix = report(messages).and_then(|r| r.fix);
    let value = assertion
        .split("==")
        .nth(1)
        .map(|v| v.split('[').next().unwrap_or(v).trim());
    if assertion.starts_with("verifyNull") {
        return match fix {
            None => Ok(Some("no position")),
            Some(f) => Err(format!("a position where Traccar has none: {f:?}")),
        };
    }
    if let Some(rest) = assertion.strip_prefix("verifyPosition expected position(") {
        let fields: Vec<&str> = rest.split(')').next().unwrap_or("").split(", ").collect();
        let f = fix.ok_or("no position")?;
        let at =
            time::OffsetDateTime::from_unix_timestamp(f.at_ms / 1000).map_err(|e| e.to_string())?;
        let shown = format!(
            "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}.000\"",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        let lat: f64 = fields[2].parse().map_err(|_| "lat")?;
        let lon: f64 = fields[3].parse().map_err(|_| "lon")?;
        if shown != fields[0] || (f.lat - lat).abs() > 1e-5 || (f.lon - lon).abs() > 1e-5 {
            return Err(format!(
                "expected {rest}, got {shown} {:.5} {:.5}",
                f.lat, f.lon
            ));
        }
        return Ok(Some("exact position"));
    }
    if assertion.starts_with("verifyPosition") {
        let f = fix.ok_or("no valid position")?;
        let year_2000 = 946_684_800_000;
        let year_2100 = 4_102_444_800_000;
        if !(year_2000..year_2100).contains(&f.at_ms)
            || f.lat.abs() > 90.0
            || f.lon.abs() > 180.0
            || f.course_deg >= 360
        {
            return Err(format!("insane position {f:?}"));
        }
        return Ok(Some("position"));
    }
    let r = report(messages);
    let value = value.unwrap_or("");
    if assertion.contains("Position.KEY_ALARM") {
        let name = value.trim_start_matches("Position.");
        let expected = traccar_alarm(name).ok_or(format!("unmapped alarm {name}"))?;
        let got = r.and_then(|r| r.alarm);
        return if got == Some(expected) {
            Ok(Some("alarm"))
        } else {
            Err(format!("alarm {got:?}, expected {expected:?}"))
        };
    }
    let number = || {
        value
            .trim_end_matches('L')
            .parse::<f64>()
            .map_err(|_| format!("number {value}"))
    };
    if assertion.contains("Position.KEY_POWER ") {
        if value == "null" {
            return match r.and_then(|r| r.power.external_v) {
                None => Ok(Some("power")),
                Some(v) => Err(format!("power {v}, expected none")),
            };
        }
        let got = r.and_then(|r| r.power.external_v);
        return if close(got, number()?) {
            Ok(Some("power"))
        } else {
            Err(format!("power {got:?}, expected {value}"))
        };
    }
    if assertion.contains("Position.KEY_BATTERY ") {
        let got = r.and_then(|r| r.power.battery_v);
        return if close(got, number()?) {
            Ok(Some("battery"))
        } else {
            Err(format!("battery {got:?}, expected {value}"))
        };
    }
    if assertion.contains("Position.KEY_BATTERY_LEVEL ") {
        let got = r.and_then(|r| r.power.battery_pct).map(f64::from);
        return if got == Some(number()?) {
            Ok(Some("battery level"))
        } else {
            Err(format!("battery level {got:?}, expected {value}"))
        };
    }
    // Everything else (cell towers, temperatures, driver ids, ICCIDs, odometers, files):
    // TagWatch does not represent it; the frame must still be read without an error.
    Ok(None)
}

#[test]
fn every_corpus_frame_is_read_and_every_represented_value_matches() {
    let mismatched: Vec<&str> = CRC_MISMATCH
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let mut failures = Vec::new();
    let mut met_not = std::collections::BTreeSet::new();
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    let mut rejected_crc = 0;
    let mut not_met = 0;
    for (line_no, line) in FRAMES.lines().enumerate() {
        let (hex, assertion) = line.split_once('\t').expect("hex, tab, assertion");
        let bytes = hex::decode(hex).expect("hex");
        // What the listener does: frames whose CRC does not verify are refused.
        let listener = frames_of(&bytes, true);
        let known = NOT_MET.iter().find(|(prefix, _)| {
            hex.to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase())
        });
        let crc_bad = mismatched.iter().any(|m| m.eq_ignore_ascii_case(hex));
        if crc_bad {
            // The list was made treating each line as one frame; a line of several whole frames,
            // each with a good CRC, is listed but is not a mismatch.
            match &listener {
                Ok(messages) => assert!(
                    messages.len() > 1,
                    "line {}: a bad CRC accepted",
                    line_no + 1
                ),
                Err(_) => rejected_crc += 1,
            }
        } else if let (Err(e), false, None) =
            (&listener, assertion.starts_with("verifyNull"), known)
        {
            failures.push(format!("line {}: {e}: {hex}", line_no + 1));
            continue;
        }
        // The decoder itself, on every frame (those with a bad CRC read as other software
        // would), for the values.
        let verdict = match frames_of(&bytes, false) {
            Ok(messages) => judge(&messages, assertion),
            // Refused by the listener (above) and not even framed right: nothing to compare.
            Err(_) if crc_bad => Ok(Some("refused for its CRC, malformed")),
            Err(_) if assertion.starts_with("verifyNull") => Ok(Some("refused, no position")),
            Err(e) => Err(e),
        };
        match (verdict, known) {
            (Ok(what), None) => {
                *checked
                    .entry(what.unwrap_or("read, nothing represented"))
                    .or_default() += 1
            }
            (Err(e), None) => {
                failures.push(format!("line {}: {assertion}: {e}\n  {hex}", line_no + 1))
            }
            (Err(_), Some((prefix, _))) => {
                not_met += 1;
                met_not.insert(*prefix);
            }
            (Ok(what), Some(_)) => {
                *checked
                    .entry(what.unwrap_or("read, nothing represented"))
                    .or_default() += 1
            }
        }
    }
    println!("checked: {checked:?}; refused for their CRC: {rejected_crc}; not met: {not_met}");
    assert!(
        failures.is_empty(),
        "{} assertions failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let stale: Vec<&str> = NOT_MET
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !met_not.contains(p))
        .collect();
    assert!(stale.is_empty(), "listed as not met but now met: {stale:?}");
    assert_eq!(checked.values().sum::<usize>() + not_met, 187);
}

#[test]
fn framing_errors_are_named() {
    assert!(matches!(
        check(&[0x78, 0x78, 0x05, 0x01, 0, 1, 0, 0, 0xAA, 0xBB], 64),
        Err(FrameError::Stop([0xAA, 0xBB]))
    ));
}
