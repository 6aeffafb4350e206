// TagWatch's officer console: sign in, watch stations, patrol units and live alerts (with the
// recent history after a reload), act on a hit (accept or reject with a reason, dispatch with a
// confirmation), find a vehicle by its plate, replay and export its track, and ask who is near a
// point or passed through an area. Every query of movements states the purpose the officer set,
// never one filled in for them. Plain browser JavaScript over the HTTP API; the only library is
// Leaflet, served by the binary itself. Words and dates come from i18n.js.
"use strict";

/** Alerts shown per page of history. */
const HISTORY_PAGE = 50;
/** Results listed at most (the rest are on the map and in exports). */
const LIST_ROWS = 50;
/** Above any alert's sequence number: the latest alerts. */
const NEWEST = 9007199254740991;

let map, layers, audio;
const stations = new Map();
let track = [];
let trackTag = null;
let area = null;
const shown = new Map(); // alert seq → list item
let oldestShown = null;
let purposeText = "";

// ---- messages and purpose ----

/** Runs a query of movements: its error is shown; a success clears the last error. */
async function query(run) {
  try {
    const result = await run();
    say("");
    return result;
  } catch (error) {
    say(error.message);
    return undefined;
  }
}

/** The purpose the officer set, for the audit log; a query without one is not sent. */
function purpose() {
  if (purposeText.length < 3) {
    $("purpose").focus();
    throw new Error(t("purpose.needed"));
  }
  return encodeURIComponent(purposeText);
}

function showPurpose() {
  $("purpose-shown").textContent = purposeText ? t("purpose.current", { purpose: purposeText }) : t("purpose.none");
  $("purpose-shown").classList.toggle("unset", !purposeText);
}

$("purpose-form").addEventListener("submit", (event) => {
  event.preventDefault();
  purposeText = $("purpose").value.trim();
  sessionStorage.setItem("tagwatch-purpose", purposeText);
  showPurpose();
  say("");
});

// ---- signing in and out ----

wireLogin($("login"), $("login-error"), (role) => role !== "owner", "login.not_officer", start);
languageSwitcher($("login-lang"), () => {});
languageSwitcher($("lang"), redraw);
applyI18n();

$("logout").addEventListener("click", async () => {
  await api("/logout", { method: "POST" }).catch(() => {});
  signOut();
});

/** After a language change: what script wrote is written again. */
function redraw() {
  showPurpose();
  showLive();
  $("who").textContent = `${session.username || ""} (${session.role})`;
  for (const item of shown.values()) item.textContent = alertLine(item.alert);
  if (track.length) drawTrackInfo();
  if (layers) {
    loadStations(false).catch(() => {});
    drawCases();
  }
}

// ---- the map ----

async function start(fresh) {
  if (fresh) {
    // A user gesture: the one moment a browser lets a page start its sound.
    audio = new AudioContext();
  }
  $("login").hidden = true;
  $("app").hidden = false;
  purposeText = sessionStorage.getItem("tagwatch-purpose") || "";
  $("purpose").value = purposeText;
  redraw();
  map = L.map("map").setView([23.0, 116.0], 13);
  await background(map, $("map"));
  layers = {
    stations: L.layerGroup().addTo(map),
    track: L.layerGroup().addTo(map),
    area: L.layerGroup().addTo(map),
    alerts: L.layerGroup().addTo(map),
    predicted: L.layerGroup().addTo(map),
    units: L.layerGroup().addTo(map),
    geofences: L.layerGroup(),
    precincts: L.layerGroup(),
    dens: L.layerGroup(),
  };
  const overlays = {};
  for (const name of ["stations", "units", "alerts", "predicted", "geofences", "precincts", "dens"]) {
    overlays[t(`layers.${name}`)] = layers[name];
  }
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  map.on("overlayadd", (event) => {
    if (event.layer === layers.geofences) loadGeofences().catch((e) => say(e.message));
    if (event.layer === layers.precincts) loadPrecincts().catch((e) => say(e.message));
    if (event.layer === layers.dens) query(loadDens);
  });
  await loadStations(true);
  setInterval(() => loadStations(false).catch(() => {}), 30_000);
  loadUnits().catch(() => {});
  setInterval(() => loadUnits().catch(() => {}), 3_000);
  loadCases().catch((e) => say(e.message));
  setInterval(() => loadCases().catch(() => {}), 30_000);
  const newest = await loadHistory(NEWEST).catch((e) => { say(e.message); return null; });
  followAlerts(newest, (alert) => {
    showAlert(alert, true);
    if (alert.kind === "stolen_sighting") loadCases().catch(() => {});
  }, showLive);
}

async function loadStations(fit) {
  const list = (await api("/stations")).stations;
  layers.stations.clearLayers();
  for (const s of list) {
    stations.set(s.id, s);
    const [colour, state] = !s.health ? ["#718096", t("station.no_heartbeat")]
      : s.silent ? ["#c53030", t("station.silent", { when: fmtTime(s.health.last_status_at) })]
      : s.health.backlog > 0 ? ["#dd6b20", t("station.backlog", { count: fmtNumber(s.health.backlog) })]
      : ["#2f855a", t("station.ok")];
    L.circleMarker([s.lat, s.lon], { radius: 4, color: colour, weight: 1, fillOpacity: 0.7 })
      .bindTooltip(plain(`${s.name} (#${s.id}): ${state}`))
      .addTo(layers.stations);
  }
  if (fit && list.length) {
    map.fitBounds(L.latLngBounds(list.map((s) => [s.lat, s.lon])), { padding: [20, 20] });
  }
}

// Patrol units as they report (blue: available, orange: on a job), redrawn every few seconds.
async function loadUnits() {
  const { units } = await api("/patrol/units");
  layers.units.clearLayers();
  for (const u of units) {
    const colour = u.available ? "#2b6cb0" : "#dd6b20";
    const state = t(u.available ? "unit.available" : "unit.busy");
    L.circleMarker([u.lat, u.lon], { radius: 7, color: "#1a202c", weight: 2, fillColor: colour, fillOpacity: 1 })
      .bindTooltip(plain(t("unit.line", { unit: u.unit, officer: u.officer, state, when: fmtTime(u.reported_at) })))
      .addTo(layers.units);
  }
}

async function loadGeofences() {
  const { geofences } = await api("/geofences");
  layers.geofences.clearLayers();
  for (const f of geofences) {
    L.polygon(f.area, { color: "#805ad5", weight: 2, fillOpacity: 0.05 }).bindTooltip(plain(f.name)).addTo(layers.geofences);
  }
}

async function loadPrecincts() {
  const { precincts } = await api("/precincts");
  layers.precincts.clearLayers();
  for (const p of precincts) {
    if (p.area) L.polygon(p.area, { color: "#2c5282", weight: 1, dashArray: "4 4", fill: false }).bindTooltip(plain(p.name)).addTo(layers.precincts);
  }
}

async function loadDens() {
  const { dens } = await api(`/dens?purpose=${purpose()}`);
  layers.dens.clearLayers();
  for (const d of dens) {
    L.circle([d.lat, d.lon], { radius: 300, color: "#9b2c2c", weight: 2, fillOpacity: 0.15 })
      .bindTooltip(plain(t("den.line", { count: d.tags.length })))
      .addTo(layers.dens);
  }
}

// ---- alerts: the recent history, then live ----

/** Shows a page of stored alerts below `before`, newest first; the newest seq shown, if any. */
async function loadHistory(before) {
  const { alerts } = await api(`/alerts?before=${before}&limit=${HISTORY_PAGE}`);
  for (const alert of alerts) showAlert(alert, false, true);
  $("older").hidden = alerts.length < HISTORY_PAGE;
  // The stream resumes after the newest shown: nothing raised meanwhile is missed.
  return alerts.length ? alerts[0].seq : 0;
}

$("older").addEventListener("click", () => {
  if (oldestShown !== null) loadHistory(oldestShown).catch((e) => say(e.message));
});

function beep() {
  if (!audio) return;
  const oscillator = audio.createOscillator();
  const gain = audio.createGain();
  oscillator.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
  oscillator.connect(gain).connect(audio.destination);
  oscillator.start();
  oscillator.stop(audio.currentTime + 0.4);
}

/** Adds an alert to the list (live ones on top; history below, oldest last) and the map. */
function showAlert(alert, live, history) {
  if (shown.has(alert.seq)) return;
  const item = el("li", alertLine(alert));
  item.alert = alert;
  item.dataset.seq = alert.seq;
  item.dataset.kind = alert.kind;
  item.dataset.status = alert.status || "open";
  if (alert.tag === null) item.classList.add("station");
  if (alert.vehicle && alert.vehicle.stolen) item.classList.add("stolen");
  item.addEventListener("click", () => openAlert(alert.seq));
  if (history) {
    $("alerts").append(item);
    oldestShown = oldestShown === null ? alert.seq : Math.min(oldestShown, alert.seq);
  } else {
    $("alerts").prepend(item);
  }
  if (live) {
    item.classList.add("new");
    if (alert.tag !== null) beep();
  }
  shown.set(alert.seq, item);
  $("alert-count").textContent = fmtNumber(shown.size);
  L.circleMarker([alert.lat, alert.lon], { radius: 9, color: "#c53030", weight: 3, fill: false })
    .bindTooltip(plain(item.textContent))
    .on("click", () => openAlert(alert.seq))
    .addTo(layers.alerts);
}

function setStatus(seq, status) {
  const item = shown.get(seq);
  if (item) item.dataset.status = status;
}

async function openAlert(seq) {
  let a;
  try {
    a = await api(`/alerts/${seq}`);
  } catch (error) {
    return say(error.message);
  }
  setStatus(seq, a.status);
  const box = $("alert-detail");
  box.hidden = false;
  box.replaceChildren();
  box.dataset.seq = seq;
  const line = (text, className) => box.append(el("div", text, className));
  line(`${alertLine(a)} — ${t(`alert.status.${a.status}`)}`, "title");
  if (a.vehicle && a.vehicle.stolen) line(t("vehicle.stolen"), "stolen-badge");
  layers.predicted.clearLayers();
  const intercept = (a.detail && a.detail.intercept) || [];
  if (intercept.length) {
    line(t("alert.likely_next"));
    const list = el("ul", undefined, "results");
    for (const i of intercept) {
      const [eta, low, high] = [i.eta_s, i.eta_low_s, i.eta_high_s].map(fmtDuration);
      // The quartiles only when they say more than the rounded median.
      const text = low === high
        ? t("alert.eta_single", { station: i.station, probability: fmtPercent(i.probability), eta })
        : t("alert.eta", { station: i.station, probability: fmtPercent(i.probability), eta, low, high });
      list.append(el("li", text));
      const s = stations.get(i.station);
      if (s) {
        L.circleMarker([s.lat, s.lon], { radius: 8, color: "#d69e2e", weight: 3, fillOpacity: 0.3 })
          .bindTooltip(plain(text), { permanent: true, direction: "right", className: "eta" })
          .addTo(layers.predicted);
        L.polyline([[a.lat, a.lon], [s.lat, s.lon]], { color: "#d69e2e", dashArray: "6 6", weight: 2 }).addTo(layers.predicted);
      }
    }
    box.append(list);
  }
  for (const act of a.actions) {
    line(`${fmtTime(act.at)} ${act.by}: ${t(`action.${act.action}`)}${act.unit ? ` ${act.unit}` : ""} — ${act.reason}`, "action");
  }
  line(a.nearest_units.length
    ? `${t("alert.nearest_units")}: ${a.nearest_units.map((u) => `${u.unit} (${fmtDistance(u.distance_m)})`).join(", ")}`
    : t("alert.no_units"));
  const actions = el("div", undefined, "actions");
  const form = el("div", undefined, "decision");
  const button = (label, handler) => actionButton(actions, label, handler);
  button(t("alert.accept"), async () => decide(form, seq, "accept"));
  button(t("alert.reject"), async () => decide(form, seq, "reject"));
  if (session.role === "dispatcher" || session.role === "admin") {
    for (const unit of a.nearest_units) {
      button(t("alert.dispatch", { unit: unit.unit }), async () => confirmDispatch(form, seq, unit));
    }
  }
  if (a.tag !== null) {
    button(t("alert.track"), async () => {
      $("tag").value = a.tag;
      // The 24 h up to the sighting, or up to now if later: the sighting that raised the
      // alert is always on it, even when the station's clock runs ahead of this one.
      await query(() => showTrack(String(a.tag), new Date(Math.max(Date.now(), Date.parse(a.seen_at)))));
    });
  }
  box.append(actions, form);
  map.panTo([a.lat, a.lon]);
}

/** The reasons offered for a decision, and "other" to type one. */
const REASONS = {
  accept: ["confirmed_visually", "plate_matches", "pursuing"],
  reject: ["owner_riding", "cloned_tag", "already_recovered", "duplicate"],
};

/** Asks for the reason in the page (a list, or typed), then records the decision. */
function decide(form, seq, verb) {
  const select = el("select");
  select.name = "reason";
  select.setAttribute("aria-label", t("alert.reason"));
  for (const key of REASONS[verb]) select.append(new Option(t(`reasons.${verb}.${key}`), t(`reasons.${verb}.${key}`)));
  select.append(new Option(t("alert.reason_other"), ""));
  const typed = el("input");
  typed.name = "reason-text";
  typed.placeholder = t("alert.reason");
  typed.hidden = true;
  select.addEventListener("change", () => { typed.hidden = select.value !== ""; });
  askInPage(form, [el("label", `${t("alert.reason")}: `), select, typed], async () => {
    const reason = select.value || typed.value.trim();
    if (!reason) return typed.focus();
    await api(`/alerts/${seq}/${verb}`, { method: "POST", body: { reason } });
    const status = verb === "accept" ? "accepted" : "rejected";
    setStatus(seq, status);
    await openAlert(seq);
    say("");
    notice(t("alert.decided", { seq, status: t(`alert.status.${status}`) }));
  });
  select.focus();
  return Promise.resolve();
}

/** Sends a unit only after the dispatcher confirms, in the page. */
function confirmDispatch(form, seq, unit) {
  const question = t("alert.dispatch_confirm", { unit: unit.unit, distance: fmtDistance(unit.distance_m) });
  askInPage(form, [el("span", question)], async () => {
    await api(`/alerts/${seq}/dispatch`, { method: "POST", body: { unit: unit.unit, note: `alert #${seq}` } });
    await openAlert(seq);
    say("");
    notice(t("alert.dispatched", { unit: unit.unit, seq }));
    loadUnits().catch(() => {});
  });
  return Promise.resolve();
}

/** Asks in the page (`parts`: the question, or its fields), with Confirm and Cancel: `act` runs
 * on Confirm, its error shown. No browser pop-up. */
function askInPage(form, parts, act) {
  const confirm = el("button", t("alert.confirm"), "confirm");
  confirm.type = "button";
  const cancel = el("button", t("alert.cancel"));
  cancel.type = "button";
  cancel.addEventListener("click", () => form.replaceChildren());
  confirm.addEventListener("click", () => act().catch((error) => say(error.message)));
  form.replaceChildren(...parts, confirm, cancel);
}

/** A button in `row` that runs `handler`, its error shown. */
function actionButton(row, label, handler, className) {
  const b = el("button", label, className);
  b.type = "button";
  b.addEventListener("click", () => handler().catch((e) => say(e.message)));
  row.append(b);
  return b;
}

// ---- case work: the open thefts, one case's file, assign, recovered ----

let cases = [];

async function loadCases() {
  cases = (await api("/cases")).cases;
  drawCases();
}

function drawCases() {
  $("case-count").textContent = fmtNumber(cases.length);
  if (!cases.length) {
    $("cases").replaceChildren(el("li", t("cases.none"), "hint"));
    return;
  }
  $("cases").replaceChildren(...cases.map((c) => {
    const seen = c.latest_sighting
      ? t("cases.latest", { when: fmtTime(c.latest_sighting.seen_at), station: c.latest_sighting.station })
      : t("cases.not_sighted");
    const who = c.assignee ? t("cases.assigned", { name: c.assignee }) : t("cases.unassigned");
    const item = el("li", `#${c.case_id} ${describeVehicle(c.vehicle, c.tag)} · ${who} · ${seen}`, "stolen");
    item.dataset.case = c.case_id;
    item.addEventListener("click", () => openCase(c.case_id).catch((e) => say(e.message)));
    return item;
  }));
}

async function openCase(id) {
  const c = await api(`/cases/${id}`);
  const box = $("case-detail");
  box.hidden = false;
  box.dataset.case = id;
  box.replaceChildren();
  const line = (text, className) => box.append(el("div", text, className));
  const vehicle = describeVehicle(c.vehicle, c.tag);
  line(`${vehicle} · #${c.tag}`, "title");
  line(t("cases.opened", { id, when: fmtTime(c.opened_at), source: t(`cases.source.${c.source}`) }));
  if (c.note) line(c.note, "note");
  if (c.expires_at) line(t("cases.expires", { when: fmtTime(c.expires_at) }));
  line(c.assignee ? t("cases.assigned", { name: c.assignee }) : t("cases.unassigned"));
  line(c.sightings.length === 1 ? t("cases.sightings_one") : t("cases.sightings", { count: fmtNumber(c.sightings.length) }));
  for (const e of c.history) line(t(`cases.history.${e.kind}`, { when: fmtTime(e.at), by: e.by, detail: e.detail }), "action");
  const actions = el("div", undefined, "actions");
  const form = el("div", undefined, "decision");
  const button = (label, handler) => actionButton(actions, label, handler);
  // The purpose is the officer's choice: this button sets it, in view, for the case's work.
  button(t("cases.use_purpose"), async () => {
    purposeText = t("cases.purpose", { id });
    $("purpose").value = purposeText;
    sessionStorage.setItem("tagwatch-purpose", purposeText);
    showPurpose();
  });
  button(t("alert.track"), async () => {
    $("tag").value = c.tag;
    await query(() => showTrack(String(c.tag)));
  });
  if (session.role === "dispatcher" || session.role === "admin") {
    button(t("cases.assign_me"), async () => assignCase(id, session.username));
  }
  button(t("cases.recovered"), async () => {
    askInPage(form, [el("span", t("cases.recovered_confirm", { id, vehicle }))], async () => {
      await api(`/vehicles/${c.tag}/recovered`, { method: "POST" });
      box.hidden = true;
      say("");
      notice(t("cases.closed", { id }));
      await loadCases();
    });
  });
  box.append(actions, form);
  if (c.latest_sighting) map.panTo([c.latest_sighting.lat, c.latest_sighting.lon]);
}

async function assignCase(id, username) {
  await api(`/cases/${id}/assign`, { method: "POST", body: { username } });
  await loadCases();
  await openCase(id);
}

// ---- a vehicle: by plate, its track replayed along a time slider, exported ----

$("plate-search").addEventListener("submit", (event) => {
  event.preventDefault();
  query(async () => {
    const plate = $("plate").value.trim();
    const found = await api(`/vehicles/search?plate=${encodeURIComponent(plate)}&purpose=${purpose()}`);
    const rows = found.vehicles.map((v) => {
      const item = el("li");
      item.dataset.tag = v.tag;
      if (v.vehicle.stolen) {
        item.classList.add("stolen");
        item.append(el("span", t("vehicle.stolen"), "stolen-badge"), " ");
      }
      const where = v.location
        ? t("vehicle.last_seen", { when: fmtTime(v.location.seen_at), station: v.location.station })
        : t("vehicle.never_heard");
      item.append(`${describeVehicle(v.vehicle, v.tag)} · #${v.tag} · ${where} `);
      const go = el("button", t("alert.track"));
      go.type = "button";
      go.addEventListener("click", () => {
        $("tag").value = v.tag;
        query(() => showTrack(String(v.tag)));
      });
      item.append(go);
      return item;
    });
    if (!rows.length) rows.push(el("li", t("vehicle.none_found", { plate })));
    if (found.truncated) rows.push(el("li", t("vehicle.more"), "hint"));
    $("plate-results").replaceChildren(...rows);
  });
});

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  query(() => showTrack($("tag").value.trim()));
});

let trackUntil = null;

// The track of the 24 h up to `until` (a Date; now when not given).
async function showTrack(tag, until) {
  const to = until ? `&to=${encodeURIComponent(until.toISOString())}` : "";
  const geo = await api(`/vehicles/${encodeURIComponent(tag)}/track?purpose=${purpose()}${to}`);
  trackTag = tag;
  trackUntil = until || null;
  track = geo.features.map((f) => ({
    lat: f.geometry.coordinates[1],
    lon: f.geometry.coordinates[0],
    first: f.properties.first_seen,
    last: f.properties.last_seen,
    station: f.properties.station,
  }));
  layers.track.clearLayers();
  drawTrackInfo();
  $("replay").hidden = track.length === 0;
  $("track-export").hidden = track.length === 0;
  if (!track.length) return;
  const line = L.polyline(track.map((p) => [p.lat, p.lon]), { color: "#2b6cb0", weight: 3 }).addTo(layers.track);
  for (const p of track) {
    L.circleMarker([p.lat, p.lon], { radius: 3, color: "#2b6cb0" })
      .bindTooltip(plain(`#${p.station} ${fmtTime(p.first)} – ${fmtTime(p.last)}`))
      .addTo(layers.track);
  }
  layers.track.replay = L.circleMarker([track[0].lat, track[0].lon], { radius: 7, color: "#1a365d", fillOpacity: 1 }).addTo(layers.track);
  $("slider").max = track.length - 1;
  $("slider").value = track.length - 1;
  replayTo(track.length - 1);
  map.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 16 });
}

function drawTrackInfo() {
  const span = trackUntil ? t("track.span_to", { when: fmtTime(trackUntil.toISOString()) }) : t("track.span_last");
  const key = track.length === 1 ? "track.visits_one" : "track.visits";
  $("track-info").textContent = t(key, { tag: trackTag, count: fmtNumber(track.length), span });
  $("track-info").dataset.count = track.length;
}

function replayTo(i) {
  const p = track[i];
  if (!p) return;
  layers.track.replay.setLatLng([p.lat, p.lon]);
  $("at").textContent = t("track.at", { i: i + 1, n: track.length, station: p.station, from: fmtTime(p.first), to: fmtTime(p.last) });
  $("at").dataset.station = p.station;
  $("at").dataset.index = i + 1;
}

$("slider").addEventListener("input", (e) => replayTo(Number(e.target.value)));
$("play").addEventListener("click", () => {
  let i = 0;
  const timer = setInterval(() => {
    $("slider").value = i;
    replayTo(i);
    i += 1;
    if (i >= track.length) clearInterval(timer);
  }, 500);
});

// The track's file comes from the API (the download is audited like the query).
for (const b of $("track-export").querySelectorAll("button")) {
  b.addEventListener("click", () => query(async () => {
    const to = trackUntil ? `&to=${encodeURIComponent(trackUntil.toISOString())}` : "";
    const response = await api(`/vehicles/${encodeURIComponent(trackTag)}/track?purpose=${purpose()}${to}&format=${b.dataset.format}`, { raw: true });
    saveFile(`tag-${trackTag}-track.${b.dataset.format}`, response.headers.get("content-type"), await response.text());
  }));
}

// ---- area questions ----

/** Where the officer is: the device's position when the browser gives it, else the map centre. */
function here() {
  const centre = map.getCenter();
  if (!navigator.geolocation) return Promise.resolve(centre);
  return new Promise((resolve) => {
    navigator.geolocation.getCurrentPosition(
      (p) => resolve(L.latLng(p.coords.latitude, p.coords.longitude)),
      () => resolve(centre),
      { timeout: 3000, maximumAge: 60_000 },
    );
  });
}

/** Lists area results: stolen vehicles first and marked, at most LIST_ROWS, saying how many. */
function listArea(summary, rows, truncated) {
  area = rows;
  const sorted = [...rows].sort((a, b) => Number(Boolean(b.vehicle && b.vehicle.stolen)) - Number(Boolean(a.vehicle && a.vehicle.stolen)));
  const parts = [summary];
  if (rows.length > LIST_ROWS) parts.push(t("area.shown", { shown: fmtNumber(LIST_ROWS), total: fmtNumber(rows.length) }));
  if (truncated) parts.push(t("area.truncated"));
  $("area-summary").textContent = parts.join(" · ");
  $("area-results").replaceChildren(...sorted.slice(0, LIST_ROWS).map((r) => {
    const item = el("li");
    if (r.vehicle && r.vehicle.stolen) {
      item.classList.add("stolen");
      item.append(el("span", t("vehicle.stolen"), "stolen-badge"), " ");
    }
    item.append(`${describeVehicle(r.vehicle, r.tag)} · ${r.text}`);
    return item;
  }));
  $("area-export").hidden = rows.length === 0;
}

function areaMarkers(rows) {
  for (const r of rows) {
    if (r.lat === undefined) continue;
    const stolen = r.vehicle && r.vehicle.stolen;
    L.circleMarker([r.lat, r.lon], { radius: stolen ? 6 : 3, color: stolen ? "#c53030" : "#805ad5" })
      .bindTooltip(plain(describeVehicle(r.vehicle, r.tag)))
      .addTo(layers.area);
  }
}

$("near").addEventListener("click", () => query(async () => {
  const c = await here();
  const r = await api(`/tags/near?lat=${c.lat}&lon=${c.lng}&radius_m=500&purpose=${purpose()}`);
  layers.area.clearLayers();
  L.circle(c, { radius: 500, color: "#805ad5", fill: false }).addTo(layers.area);
  const rows = r.tags.map((x) => ({ ...x, time: x.seen_at, text: `${fmtDistance(x.distance_m)}, ${fmtTime(x.seen_at)}` }));
  areaMarkers(rows);
  map.panTo(c);
  listArea(t("area.near_count", { count: fmtNumber(rows.length) }), rows, false);
}));

$("through").addEventListener("click", () => query(async () => {
  const b = map.getBounds();
  const to = new Date();
  const from = new Date(to - 3_600_000);
  const r = await api(`/tags/through?south=${b.getSouth()}&west=${b.getWest()}&north=${b.getNorth()}&east=${b.getEast()}` +
    `&from=${from.toISOString()}&to=${to.toISOString()}&purpose=${purpose()}`);
  layers.area.clearLayers();
  L.rectangle(b, { color: "#805ad5", fill: false }).addTo(layers.area);
  const rows = r.tags.map((x) => ({ ...x, time: x.first_seen, text: `${fmtTime(x.first_seen)} – ${fmtTime(x.last_seen)}` }));
  listArea(t("area.through_count", { count: fmtNumber(rows.length) }), rows, r.truncated);
}));

/** Area results as a file: the rows of the answer the query already audited. */
function areaFile(format) {
  const rows = area || [];
  const name = (r) => describeVehicle(r.vehicle, r.tag);
  const xml = (s) => String(s).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const csvCell = (s) => (/[",\n]/.test(String(s)) ? `"${String(s).replace(/"/g, '""')}"` : String(s));
  if (format === "csv") {
    const head = "tag,plate,stolen,lat,lon,station,seen_at,first_seen,last_seen,distance_m";
    const lines = rows.map((r) => [r.tag, r.vehicle ? r.vehicle.plate : "", Boolean(r.vehicle && r.vehicle.stolen),
      r.lat ?? "", r.lon ?? "", r.station ?? "", r.seen_at ?? "", r.first_seen ?? "", r.last_seen ?? "", r.distance_m ?? ""].map(csvCell).join(","));
    return ["text/csv", [head, ...lines].join("\n") + "\n"];
  }
  const placed = rows.filter((r) => r.lat !== undefined);
  if (format === "gpx") {
    const points = placed.map((r) => `<wpt lat="${r.lat}" lon="${r.lon}"><time>${xml(r.time)}</time><name>${xml(name(r))}</name></wpt>`);
    return ["application/gpx+xml", `<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="TagWatch" xmlns="http://www.topografix.com/GPX/1/1">\n${points.join("\n")}\n</gpx>\n`];
  }
  const marks = placed.map((r) => `<Placemark><name>${xml(name(r))}</name><TimeStamp><when>${xml(r.time)}</when></TimeStamp><Point><coordinates>${r.lon},${r.lat}</coordinates></Point></Placemark>`);
  return ["application/vnd.google-earth.kml+xml", `<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>\n${marks.join("\n")}\n</Document></kml>\n`];
}

for (const b of $("area-export").querySelectorAll("button")) {
  b.addEventListener("click", () => {
    const [type, text] = areaFile(b.dataset.format);
    saveFile(`area-results.${b.dataset.format}`, type, text);
  });
}

if (session.token && session.role && session.role !== "owner") start(false);
