//! # Watch rules against the simulator's truth: geofences, armed vehicles, stolen sightings.
//!
//! The truth command plants each rule's scenario in the simulated city, follows what truly
//! happens (from the vehicles' true positions and the stations' true ranges), and scores the
//! alerts the tracker raised: precision (the share of alerts that were right), recall (the share
//! of true events alerted) and delay (from the true event to the alert being raised).

use std::collections::HashMap;
use tagwatch_model::{Alert, AlertKind, GeoPoint, Geofence, StationId, TagId};
use tagwatch_sim::city::{City, CityConfig, TruthInterval};
use tagwatch_tracker::ARMED_RADIUS_M;

/// Precision, recall and delay of one rule.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub alerts: usize,
    pub right_alerts: usize,
    pub events: usize,
    pub alerted_events: usize,
    /// Seconds from each alerted event to its alert.
    pub delays_s: Vec<f64>,
}

impl Score {
    pub fn precision(&self) -> f64 {
        self.right_alerts as f64 / self.alerts.max(1) as f64
    }

    pub fn recall(&self) -> f64 {
        self.alerted_events as f64 / self.events.max(1) as f64
    }

    /// The `p` quantile of the delays, seconds.
    pub fn delay_s(&self, p: f64) -> f64 {
        let mut d = self.delays_s.clone();
        d.sort_by(f64::total_cmp);
        d.get(((d.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// A table row: `| name | alerts | precision | events | recall | delay p50 | p90 |`.
    pub fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {:.3} | {} | {:.3} | {:.1} s | {:.1} s |",
            self.alerts,
            self.precision(),
            self.events,
            self.recall(),
            self.delay_s(0.5),
            self.delay_s(0.9)
        )
    }
}

/// A vehicle truly crossed a fence's outline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    pub tag: TagId,
    pub fence: i64,
    pub entered: bool,
    pub at_ms: i64,
}

/// Rectangular fences whose edges run mid-block (between rows of stations, as a district's
/// boundary does), every vehicle watched, and the crossings each vehicle truly made.
#[derive(Debug)]
pub struct FenceTruth {
    fences: Vec<(Geofence, [f64; 2], [f64; 2])>,
    inside: HashMap<(TagId, i64), bool>,
    pub crossings: Vec<Crossing>,
}

impl FenceTruth {
    /// `count` fences of 6 × 6 blocks spread over the grid, watching `tags`.
    pub fn new(city: &CityConfig, tags: &[TagId], count: u32) -> Self {
        let s = city.spacing_m;
        let fences = (0..count)
            .map(|i| {
                // Spread along the diagonal, clear of the edges.
                let span = city.grid_w.min(city.grid_h).saturating_sub(8).max(1);
                let corner = 1 + (i * span / count.max(1));
                let lo = [(f64::from(corner) - 0.5) * s, (f64::from(corner) - 0.5) * s];
                let hi = [lo[0] + 6.0 * s, lo[1] + 6.0 * s];
                let area = [lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]]
                    .into_iter()
                    .map(|xy| city.geo_of(xy))
                    .collect();
                let fence = Geofence {
                    id: i64::from(i) + 1,
                    name: format!("district {}", i + 1),
                    area,
                    tags: tags.to_vec(),
                    on_enter: true,
                    on_leave: true,
                };
                (fence, lo, hi)
            })
            .collect();
        Self {
            fences,
            inside: HashMap::new(),
            crossings: Vec::new(),
        }
    }

    pub fn fences(&self) -> impl Iterator<Item = &Geofence> {
        self.fences.iter().map(|(f, _, _)| f)
    }

    /// Notes where each watched vehicle truly is now.
    pub fn observe(&mut self, city: &City, tags: &[TagId], now_ms: i64) {
        for &tag in tags {
            let Some([x, y]) = city.position_of(tag) else {
                continue;
            };
            for (fence, lo, hi) in &self.fences {
                let now_inside = (lo[0]..=hi[0]).contains(&x) && (lo[1]..=hi[1]).contains(&y);
                match self.inside.insert((tag, fence.id), now_inside) {
                    Some(was) if was != now_inside => self.crossings.push(Crossing {
                        tag,
                        fence: fence.id,
                        entered: now_inside,
                        at_ms: now_ms,
                    }),
                    _ => {}
                }
            }
        }
    }

    /// Scores the geofence alerts, entries and exits apart. An alert is right when its sighting
    /// is from 30 s before the vehicle truly made that crossing of that fence to 2 min after it
    /// (later is too late to send anyone); each crossing is matched to one alert at most.
    /// Crossings in the last two minutes before `end_ms` are not scored (their time to be
    /// alerted had not run out when the run ended), nor alerts that could only be about them.
    pub fn score(&self, alerts: &[Alert], end_ms: i64) -> (Score, Score) {
        let mut scores = (Score::default(), Score::default());
        for entered in [true, false] {
            let score = if entered {
                &mut scores.0
            } else {
                &mut scores.1
            };
            let mut fired: Vec<&Alert> = alerts
                .iter()
                .filter(|a| a.kind == AlertKind::Geofence)
                .filter(|a| {
                    a.detail
                        .fence
                        .as_ref()
                        .is_some_and(|f| f.entered == entered)
                })
                .collect();
            fired.sort_by_key(|a| a.seen_at_ms);
            let scored_alerts = fired
                .iter()
                .filter(|a| a.seen_at_ms <= end_ms - 150_000)
                .count();
            let mut used = vec![false; fired.len()];
            let truths: Vec<&Crossing> = self
                .crossings
                .iter()
                .filter(|c| c.entered == entered && c.at_ms <= end_ms - 120_000)
                .collect();
            score.events = truths.len();
            score.alerts = scored_alerts;
            for c in truths {
                let hit = fired.iter().enumerate().position(|(i, a)| {
                    !used[i]
                        && a.tag == Some(c.tag)
                        && a.detail.fence.as_ref().is_some_and(|f| f.fence == c.fence)
                        && (c.at_ms - 30_000..=c.at_ms + 120_000).contains(&a.seen_at_ms)
                });
                if let Some(i) = hit {
                    used[i] = true;
                    score.alerted_events += 1;
                    if fired[i].seen_at_ms <= end_ms - 150_000 {
                        score.right_alerts += 1;
                    }
                    score
                        .delays_s
                        .push((fired[i].raised_at_ms - c.at_ms) as f64 / 1000.0);
                }
            }
        }
        scores
    }
}

/// Parked vehicles armed by their owners, and when each truly moved away.
#[derive(Debug, Default)]
pub struct ArmedTruth {
    /// Where each was truly parked when armed.
    parked_at: HashMap<TagId, [f64; 2]>,
    /// When each first went further than the armed radius from there.
    moved_at: HashMap<TagId, i64>,
}

impl ArmedTruth {
    /// Arms up to `count` parked vehicles the tracker has placed; returns each with the place
    /// the owner's app would send (where TagWatch last heard it).
    pub fn arm(
        &mut self,
        city: &City,
        tags: &[TagId],
        count: usize,
        last_heard: impl Fn(TagId) -> Option<GeoPoint>,
    ) -> Vec<(TagId, GeoPoint)> {
        let mut armed = Vec::new();
        for &tag in tags {
            if armed.len() >= count {
                break;
            }
            if city.is_driving(tag) {
                continue;
            }
            let (Some(xy), Some(heard)) = (city.position_of(tag), last_heard(tag)) else {
                continue;
            };
            self.parked_at.insert(tag, xy);
            armed.push((tag, heard));
        }
        armed
    }

    /// Notes which armed vehicles have truly moved away by now.
    pub fn observe(&mut self, city: &City, now_ms: i64) {
        for (&tag, &[x0, y0]) in &self.parked_at {
            if self.moved_at.contains_key(&tag) {
                continue;
            }
            if let Some([x, y]) = city.position_of(tag) {
                if (x - x0).hypot(y - y0) > ARMED_RADIUS_M {
                    self.moved_at.insert(tag, now_ms);
                }
            }
        }
    }

    /// An `armed_moved` alert is right when its vehicle truly went further than the armed
    /// radius from where it was parked (by 30 s after the alert); recall over the vehicles that
    /// did.
    pub fn score(&self, alerts: &[Alert]) -> Score {
        let mut first_alert: HashMap<TagId, &Alert> = HashMap::new();
        let mut score = Score::default();
        for a in alerts.iter().filter(|a| a.kind == AlertKind::ArmedMoved) {
            let Some(tag) = a.tag else { continue };
            score.alerts += 1;
            if self
                .moved_at
                .get(&tag)
                .is_some_and(|&t| t <= a.raised_at_ms + 30_000)
            {
                score.right_alerts += 1;
            }
            first_alert.entry(tag).or_insert(a);
        }
        score.events = self.moved_at.len();
        for (tag, &t) in &self.moved_at {
            if let Some(a) = first_alert.get(tag) {
                score.alerted_events += 1;
                score.delays_s.push((a.raised_at_ms - t) as f64 / 1000.0);
            }
        }
        score
    }
}

/// Stolen vehicles' passes by stations after their report: each pass (its in-range intervals at
/// one station, joined across gaps shorter than the tracker's visit gap, 4 s or longer: two
/// beacons) should raise one `stolen_sighting` there; an alert is right when the vehicle was
/// within that station's range at the sighting's time (± one beacon).
pub fn score_stolen(
    intervals: &HashMap<TagId, Vec<TruthInterval>>,
    stolen: &HashMap<TagId, i64>,
    alerts: &[Alert],
    visit_gap_ms: i64,
) -> Score {
    const SLACK_MS: i64 = 2_000;
    let mut score = Score::default();
    let sightings: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::StolenSighting && !a.detail.look_back)
        .collect();
    let within = |tag: TagId, station: StationId, t: i64| {
        intervals.get(&tag).is_some_and(|list| {
            list.iter().any(|i| {
                i.station == station && i.enter_ms - SLACK_MS <= t && t <= i.exit_ms + SLACK_MS
            })
        })
    };
    score.alerts = sightings.len();
    score.right_alerts = sightings
        .iter()
        .filter(|a| a.tag.is_some_and(|t| within(t, a.station, a.seen_at_ms)))
        .count();
    for (&tag, &reported_ms) in stolen {
        let mut by_station: HashMap<StationId, Vec<(i64, i64)>> = HashMap::new();
        for i in intervals.get(&tag).into_iter().flatten() {
            if i.enter_ms >= reported_ms {
                by_station
                    .entry(i.station)
                    .or_default()
                    .push((i.enter_ms, i.exit_ms));
            }
        }
        for (station, mut spans) in by_station {
            spans.sort_unstable();
            let mut passes: Vec<(i64, i64)> = Vec::new();
            for (a, b) in spans {
                match passes.last_mut() {
                    Some(last) if a - last.1 < visit_gap_ms => last.1 = last.1.max(b),
                    _ => passes.push((a, b)),
                }
            }
            for (enter, exit) in passes.into_iter().filter(|(a, b)| b - a >= 4_000) {
                score.events += 1;
                let hit = sightings.iter().find(|a| {
                    a.tag == Some(tag)
                        && a.station == station
                        && (enter - SLACK_MS..=exit + SLACK_MS).contains(&a.seen_at_ms)
                });
                if let Some(a) = hit {
                    score.alerted_events += 1;
                    score
                        .delays_s
                        .push((a.raised_at_ms - enter) as f64 / 1000.0);
                }
            }
        }
    }
    score
}
