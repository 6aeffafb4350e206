// TagWatch's officer map: sign in, watch stations and live alerts, act on a hit, find a vehicle
// and replay its track, and ask who is near a point or passed through an area. Plain browser
// JavaScript over the HTTP API; the only library is Leaflet, served by the binary itself.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("tagwatch-token");
let role = sessionStorage.getItem("tagwatch-role");
let map, stationLayer, unitLayer, alertLayer, trackLayer, areaLayer, replayMarker, audio;
let track = [];
let alertCount = 0;

/** Text for a Leaflet tooltip or popup, which would otherwise be read as HTML: a station's
 * name is whatever its installer typed, and must show as typed, never run. */
function plain(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

/** Calls the API with the session's token; throws an Error with the API's message. */
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    signOut("Your session has ended: sign in again.");
    throw new Error("signed out");
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new Error(body && body.error ? body.error.message : `HTTP ${response.status}`);
  }
  return body;
}

function say(message) {
  $("message").textContent = message || "";
}

/** The purpose every movement query must state (it goes into the audit log). */
function purpose() {
  const value = $("purpose").value.trim();
  if (value.length < 3) {
    $("purpose").focus();
    throw new Error("State a purpose first (a case number or a reason): every query is audited.");
  }
  return encodeURIComponent(value);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "?";
}

// ---- signing in and out ----

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $("login-error").textContent = "";
  const response = await fetch("/api/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    $("login-error").textContent = body && body.error ? body.error.message : "Sign-in failed";
    return;
  }
  if (body.role === "owner") {
    $("login-error").textContent = "This map is for officers and dispatchers.";
    return;
  }
  token = body.token;
  role = body.role;
  sessionStorage.setItem("tagwatch-token", token);
  sessionStorage.setItem("tagwatch-role", role);
  // A user gesture: the one moment a browser lets a page start its sound.
  audio = new AudioContext();
  start(form.get("username"));
});

function signOut(message) {
  sessionStorage.clear();
  token = null;
  if (message) alert(message);
  location.reload();
}

$("logout").addEventListener("click", async () => {
  await api("/logout", { method: "POST" }).catch(() => {});
  signOut();
});

// ---- the map ----

async function start(username) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = `${username || ""} (${role})`;
  const config = await fetch("/config.json").then((r) => r.json());
  map = L.map("map", { preferCanvas: false }).setView([23.0, 116.0], 13);
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: "map tiles" }).addTo(map);
  } else {
    // Offline: stations, tracks and alerts on a plain background.
    $("map").classList.add("offline");
  }
  stationLayer = L.layerGroup().addTo(map);
  trackLayer = L.layerGroup().addTo(map);
  areaLayer = L.layerGroup().addTo(map);
  alertLayer = L.layerGroup().addTo(map);
  unitLayer = L.layerGroup().addTo(map);
  await loadStations(true);
  setInterval(() => loadStations(false).catch(() => {}), 30_000);
  loadUnits().catch(() => {});
  setInterval(() => loadUnits().catch(() => {}), 3_000);
  streamAlerts();
}

async function loadStations(fit) {
  const { stations } = await api("/stations");
  stationLayer.clearLayers();
  for (const s of stations) {
    const [colour, state] = !s.health ? ["#718096", "no heartbeat yet"]
      : s.silent ? ["#c53030", `silent since ${when(s.health.last_status_at)}`]
      : s.health.backlog > 0 ? ["#dd6b20", `backlog ${s.health.backlog}`]
      : ["#2f855a", "ok"];
    const mobile = s.mobile ? `, mobile reader here at ${when(s.position_at)}` : "";
    L.circleMarker([s.lat, s.lon], { radius: 4, color: colour, weight: 1, fillOpacity: 0.7 })
      .bindTooltip(plain(`${s.name} (#${s.id}): ${state}${mobile}`))
      .addTo(stationLayer);
  }
  if (fit && stations.length) {
    map.fitBounds(L.latLngBounds(stations.map((s) => [s.lat, s.lon])), { padding: [20, 20] });
  }
}

// Patrol units as they report (blue: available, orange: on a job), redrawn every few seconds.
async function loadUnits() {
  const { units } = await api("/patrol/units");
  unitLayer.clearLayers();
  for (const u of units) {
    const colour = u.available ? "#2b6cb0" : "#dd6b20";
    const state = u.available ? "available" : "on a job";
    L.circleMarker([u.lat, u.lon], { radius: 7, color: "#1a202c", weight: 2, fillColor: colour, fillOpacity: 1 })
      .bindTooltip(plain(`${u.unit} (${u.officer}): ${state}, reported ${when(u.reported_at)}`))
      .addTo(unitLayer);
  }
}

// ---- live alerts (SSE over fetch, so the token travels in a header, resumed by Last-Event-ID) ----

async function streamAlerts() {
  let last = null;
  for (;;) {
    try {
      const headers = { Authorization: `Bearer ${token}` };
      if (last) headers["Last-Event-ID"] = last;
      const response = await fetch("/api/v1/alerts/stream", { headers });
      if (response.status === 401) return signOut("Your session has ended: sign in again.");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      $("live").textContent = "live";
      $("live").classList.add("on");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseEvent(block);
          if (event.event === "alert") {
            last = event.id;
            showAlert(JSON.parse(event.data), true);
          }
        }
      }
    } catch (error) {
      console.warn("alert stream", error);
    }
    $("live").textContent = "reconnecting…";
    $("live").classList.remove("on");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function parseEvent(block) {
  const event = { event: "message", data: "", id: null };
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") event.data += value;
    else if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
  }
  return event;
}

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

function showAlert(alert, live) {
  alertCount += 1;
  $("alert-count").textContent = alertCount;
  const item = document.createElement("li");
  item.dataset.seq = alert.seq;
  item.dataset.kind = alert.kind;
  item.className = alert.tag === null ? "station" : "";
  const subject = alert.tag === null ? `station ${alert.station}` : `tag ${alert.tag} at station ${alert.station}`;
  item.textContent = `#${alert.seq} ${alert.kind.replace(/_/g, " ")}: ${subject}, ${when(alert.seen_at)}${alert.late ? " (late)" : ""}`;
  item.addEventListener("click", () => openAlert(alert.seq));
  if (live) {
    item.classList.add("new");
    if (alert.tag !== null) beep();
  }
  $("alerts").prepend(item);
  L.circleMarker([alert.lat, alert.lon], { radius: 9, color: "#c53030", weight: 3, fill: false })
    .bindTooltip(plain(item.textContent))
    .on("click", () => openAlert(alert.seq))
    .addTo(alertLayer);
}

async function openAlert(seq) {
  try {
    const a = await api(`/alerts/${seq}`);
    const box = $("alert-detail");
    box.hidden = false;
    box.replaceChildren();
    const line = (text) => {
      const p = document.createElement("div");
      p.textContent = text;
      box.append(p);
    };
    line(`#${a.seq} ${a.kind.replace(/_/g, " ")}: ${a.status}`);
    if (a.tag !== null) line(`Tag ${a.tag} at station ${a.station}, seen ${when(a.seen_at)}`);
    if (a.detail && a.detail.intercept && a.detail.intercept.length) {
      line(`Likely next: ${a.detail.intercept.map((i) => `#${i.station} (${Math.round(i.probability * 100)} %, ~${Math.round(i.eta_s)} s, ${Math.round(i.eta_low_s)}-${Math.round(i.eta_high_s)} s)`).join(", ")}`);
    }
    for (const act of a.actions) line(`${when(act.at)} ${act.by}: ${act.action}${act.unit ? ` ${act.unit}` : ""} — ${act.reason}`);
    line(a.nearest_units.length
      ? `Nearest units: ${a.nearest_units.map((u) => `${u.unit} (${Math.round(u.distance_m)} m)`).join(", ")}`
      : "No available unit has reported its position.");
    const actions = document.createElement("div");
    actions.className = "actions";
    const button = (label, handler) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", () => handler().catch((e) => say(e.message)));
      actions.append(b);
    };
    const decide = (verb) => async () => {
      const reason = prompt(`Why ${verb === "accept" ? "accept" : "reject"} this hit?`);
      if (!reason) return;
      await api(`/alerts/${seq}/${verb}`, { method: "POST", body: { reason } });
      await openAlert(seq);
    };
    button("Accept", decide("accept"));
    button("Reject", decide("reject"));
    if (role === "dispatcher" || role === "admin") {
      for (const unit of a.nearest_units) {
        button(`Dispatch ${unit.unit}`, async () => {
          await api(`/alerts/${seq}/dispatch`, { method: "POST", body: { unit: unit.unit, note: `to alert #${seq}` } });
          await openAlert(seq);
        });
      }
    }
    if (a.tag !== null) {
      button("Track", async () => {
        $("tag").value = a.tag;
        if ($("purpose").value.trim().length < 3) $("purpose").value = `alert #${a.seq}`;
        // The 24 h up to the sighting, or up to now if later: the sighting that raised the
        // alert is always on it, even when the station's clock runs ahead of this one.
        await showTrack(a.tag, new Date(Math.max(Date.now(), Date.parse(a.seen_at))));
      });
    }
    box.append(actions);
    map.panTo([a.lat, a.lon]);
  } catch (error) {
    say(error.message);
  }
}

// ---- a vehicle's track, replayable along a time slider ----

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  showTrack($("tag").value.trim()).catch((e) => say(e.message));
});

// The track of the 24 h up to `until` (a Date; now when not given).
async function showTrack(tag, until) {
  say("");
  const to = until ? `&to=${encodeURIComponent(until.toISOString())}` : "";
  const geo = await api(`/vehicles/${encodeURIComponent(tag)}/track?purpose=${purpose()}${to}`);
  track = geo.features.map((f) => ({
    lat: f.geometry.coordinates[1],
    lon: f.geometry.coordinates[0],
    first: f.properties.first_seen,
    last: f.properties.last_seen,
    station: f.properties.station,
  }));
  trackLayer.clearLayers();
  const span = until ? `in the 24 h to ${when(until.toISOString())}` : "in the last 24 h";
  $("track-info").textContent = `Tag ${tag}: ${track.length} visits ${span}`;
  $("replay").hidden = track.length === 0;
  if (!track.length) return;
  const line = L.polyline(track.map((p) => [p.lat, p.lon]), { color: "#2b6cb0", weight: 3 }).addTo(trackLayer);
  for (const p of track) {
    L.circleMarker([p.lat, p.lon], { radius: 3, color: "#2b6cb0" })
      .bindTooltip(plain(`#${p.station} ${when(p.first)}–${when(p.last)}`))
      .addTo(trackLayer);
  }
  replayMarker = L.circleMarker([track[0].lat, track[0].lon], { radius: 7, color: "#1a365d", fillOpacity: 1 }).addTo(trackLayer);
  $("slider").max = track.length - 1;
  $("slider").value = track.length - 1;
  replayTo(track.length - 1);
  map.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 16 });
}

function replayTo(i) {
  const p = track[i];
  if (!p) return;
  replayMarker.setLatLng([p.lat, p.lon]);
  $("at").textContent = `${i + 1}/${track.length}: station #${p.station}, ${when(p.first)}–${when(p.last)}`;
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

// ---- area questions ----

function listResults(rows) {
  $("area-results").replaceChildren(...rows.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

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

$("near").addEventListener("click", async () => {
  try {
    const c = await here();
    const r = await api(`/tags/near?lat=${c.lat}&lon=${c.lng}&radius_m=500&purpose=${purpose()}`);
    areaLayer.clearLayers();
    L.circle(c, { radius: 500, color: "#805ad5", fill: false }).addTo(areaLayer);
    for (const t of r.tags) L.circleMarker([t.lat, t.lon], { radius: 3, color: "#805ad5" }).addTo(areaLayer);
    map.panTo(c);
    listResults([`${r.tags.length} tags within 500 m`, ...r.tags.slice(0, 50).map((t) => `tag ${t.tag}: ${t.distance_m} m, ${when(t.seen_at)}`)]);
  } catch (error) {
    say(error.message);
  }
});

$("through").addEventListener("click", async () => {
  try {
    const b = map.getBounds();
    const to = new Date();
    const from = new Date(to - 3_600_000);
    const r = await api(`/tags/through?south=${b.getSouth()}&west=${b.getWest()}&north=${b.getNorth()}&east=${b.getEast()}` +
      `&from=${from.toISOString()}&to=${to.toISOString()}&purpose=${purpose()}`);
    areaLayer.clearLayers();
    L.rectangle(b, { color: "#805ad5", fill: false }).addTo(areaLayer);
    listResults([`${r.tags.length} tags passed through the view (from ${r.source})`, ...r.tags.slice(0, 50).map((t) => `tag ${t.tag}: ${when(t.first_seen)}–${when(t.last_seen)}`)]);
  } catch (error) {
    say(error.message);
  }
});

if (token) start();
