//! # The registered trackers, as the device listener and the API share them.
//!
//! Loaded from the store at start and kept current by the API (registration, removal, engine
//! commands). For each device: which vehicle it is fitted to, the station it reports as and that
//! station's key, its latest report, whether it is connected, and its engine commands waiting to
//! go out.

use crate::report::{Alarm, Fix, Imei, Power};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use tagwatch_model::{StationId, StationKey, TagId};
use tokio::sync::Notify;

/// A registered tracker.
#[derive(Debug, Clone)]
pub struct Device {
    pub imei: Imei,
    pub tag: TagId,
    /// The station its reports are made as (a device station, `StationId::is_device`).
    pub station: StationId,
    pub key: Arc<StationKey>,
}

/// Engine commands an officer (stop) or an owner (resume) can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineAction {
    Stop,
    Resume,
}

impl EngineAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineAction::Stop => "stop",
            EngineAction::Resume => "resume",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stop" => Some(EngineAction::Stop),
            "resume" => Some(EngineAction::Resume),
            _ => None,
        }
    }

    /// The text command Concox trackers take for it: `DYD#` cuts the fuel or power relay,
    /// `HFYD#` restores it.
    pub fn text(self) -> &'static str {
        match self {
            EngineAction::Stop => "DYD#",
            EngineAction::Resume => "HFYD#",
        }
    }
}

/// A command waiting to go out (its id is the store's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingCommand {
    pub id: i64,
    pub action: EngineAction,
}

/// What a tracker last said, as the owner and officers see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastReport {
    /// When the server received it.
    pub received_at_ms: i64,
    /// Its latest valid fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_v: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_v: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<u8>,
}

/// A fix as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FixView {
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: u16,
    pub course_deg: u16,
}

impl From<Fix> for FixView {
    fn from(f: Fix) -> Self {
        Self {
            at_ms: f.at_ms,
            lat: f.lat,
            lon: f.lon,
            speed_kmh: f.speed_kmh,
            course_deg: f.course_deg,
        }
    }
}

impl LastReport {
    /// Folds a new report in: readings it carries replace the old ones, others stay.
    pub fn update(&mut self, at_ms: i64, fix: Option<Fix>, alarm: Option<Alarm>, power: Power) {
        self.received_at_ms = at_ms;
        if let Some(fix) = fix.filter(|f| f.valid) {
            if self.fix.is_none_or(|old| old.at_ms <= fix.at_ms) {
                self.fix = Some(fix.into());
            }
        }
        if let Some(alarm) = alarm {
            self.alarm = Some(alarm.as_str().to_owned());
        }
        self.external_v = power.external_v.or(self.external_v);
        self.battery_v = power.battery_v.or(self.battery_v);
        self.battery_pct = power.battery_pct.or(self.battery_pct);
    }
}

#[derive(Debug)]
struct Entry {
    device: Device,
    /// The last session id a connection of it used: each new connection takes a larger one.
    last_session: u32,
    report: Option<LastReport>,
    connected: usize,
    commands: VecDeque<PendingCommand>,
    wake: Arc<Notify>,
}

/// Every registered tracker, by IMEI. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<HashMap<Imei, Entry>>>,
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Imei, Entry>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Imei, Entry>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces) a tracker.
    pub fn insert(&self, device: Device) {
        let mut map = self.write();
        match map.get_mut(&device.imei) {
            Some(entry) => entry.device = device,
            None => {
                map.insert(
                    device.imei,
                    Entry {
                        device,
                        last_session: 0,
                        report: None,
                        connected: 0,
                        commands: VecDeque::new(),
                        wake: Arc::new(Notify::new()),
                    },
                );
            }
        }
    }

    /// Makes the registry hold exactly `devices` (read again from the store), keeping each kept
    /// device's connection state and report, and queues the `pending` commands it does not
    /// hold yet (a cluster's gateway learns registrations and commands made through any API
    /// node this way).
    pub fn sync(&self, devices: Vec<Device>, pending: Vec<(Imei, PendingCommand)>) {
        let fresh: std::collections::HashSet<Imei> = devices.iter().map(|d| d.imei).collect();
        let gone: Vec<Imei> = self
            .read()
            .keys()
            .filter(|imei| !fresh.contains(imei))
            .copied()
            .collect();
        for imei in gone {
            self.remove(imei);
        }
        for device in devices {
            self.insert(device);
        }
        for (imei, command) in pending {
            self.queue(imei, command);
        }
    }

    /// Removes a tracker; its open connection is closed at its next message.
    pub fn remove(&self, imei: Imei) -> bool {
        let removed = self.write().remove(&imei);
        if let Some(entry) = &removed {
            entry.wake.notify_waiters();
        }
        removed.is_some()
    }

    pub fn device(&self, imei: Imei) -> Option<Device> {
        self.read().get(&imei).map(|e| e.device.clone())
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// A new connection of `imei` logged in at `now_s`: its session id (larger than any
    /// before, so its frames are never taken for an earlier connection's) and what wakes it
    /// when a command is queued.
    pub fn connect(&self, imei: Imei, now_s: u32) -> Option<(Device, u32, Arc<Notify>)> {
        let mut map = self.write();
        let entry = map.get_mut(&imei)?;
        entry.last_session = now_s.max(entry.last_session.saturating_add(1)).max(1);
        entry.connected += 1;
        Some((entry.device.clone(), entry.last_session, entry.wake.clone()))
    }

    pub fn disconnect(&self, imei: Imei) {
        if let Some(entry) = self.write().get_mut(&imei) {
            entry.connected = entry.connected.saturating_sub(1);
        }
    }

    pub fn is_connected(&self, imei: Imei) -> bool {
        self.read().get(&imei).is_some_and(|e| e.connected > 0)
    }

    /// Folds a report into the device's latest; returns the result.
    pub fn report(
        &self,
        imei: Imei,
        at_ms: i64,
        fix: Option<Fix>,
        alarm: Option<Alarm>,
        power: Power,
    ) -> Option<LastReport> {
        let mut map = self.write();
        let entry = map.get_mut(&imei)?;
        let report = entry.report.get_or_insert_with(LastReport::default);
        report.update(at_ms, fix, alarm, power);
        Some(report.clone())
    }

    /// Puts back a report read from the store at start.
    pub fn restore_report(&self, imei: Imei, report: LastReport) {
        if let Some(entry) = self.write().get_mut(&imei) {
            entry.report = Some(report);
        }
    }

    /// The tracker reporting as `station`.
    pub fn imei_of_station(&self, station: StationId) -> Option<Imei> {
        self.read()
            .values()
            .find(|e| e.device.station == station)
            .map(|e| e.device.imei)
    }

    /// The latest report of the tracker reporting as `station`.
    pub fn report_of_station(&self, station: StationId) -> Option<LastReport> {
        self.read()
            .values()
            .find(|e| e.device.station == station)
            .and_then(|e| e.report.clone())
    }

    pub fn last_report(&self, imei: Imei) -> Option<LastReport> {
        self.read().get(&imei).and_then(|e| e.report.clone())
    }

    /// Queues a command for the device and wakes its connection, if any.
    pub fn queue(&self, imei: Imei, command: PendingCommand) -> bool {
        let mut map = self.write();
        let Some(entry) = map.get_mut(&imei) else {
            return false;
        };
        if !entry.commands.iter().any(|c| c.id == command.id) {
            entry.commands.push_back(command);
        }
        // A permit is kept if the connection is busy with a message just now: it wakes at once
        // when it next waits, and the command is not left for the device's next message.
        entry.wake.notify_one();
        true
    }

    /// The oldest command waiting for the device.
    pub fn next_command(&self, imei: Imei) -> Option<PendingCommand> {
        self.read()
            .get(&imei)
            .and_then(|e| e.commands.front().copied())
    }

    /// The command has been answered: it no longer waits.
    pub fn command_done(&self, imei: Imei, id: i64) {
        if let Some(entry) = self.write().get_mut(&imei) {
            entry.commands.retain(|c| c.id != id);
        }
    }
}
