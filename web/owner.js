// TagWatch for vehicle owners, made for a phone: my vehicles with their last sighting, arm and
// disarm, report a theft (when and where it was last seen, picked on a map; the server looks
// back for sightings since), my alerts live, and mark a vehicle recovered. Plain browser
// JavaScript over the HTTP API (an owner sees only their own vehicles); words from i18n.js.
"use strict";

let vehicles = [];
let reporting = null;
let pickMap = null;
let pickMarker = null;
const alertItems = new Map();

wireLogin($("login"), $("login-error"), (role) => role === "owner", "login.not_owner", start);
languageSwitcher($("login-lang"), () => {});
languageSwitcher($("lang"), redraw);
applyI18n();

$("logout").addEventListener("click", async () => {
  await api("/logout", { method: "POST" }).catch(() => {});
  signOut();
});

function redraw() {
  showLive();
  $("who").textContent = session.username || "";
  drawVehicles();
  for (const item of alertItems.values()) item.textContent = alertLine(item.alert);
  if (reporting) $("report-heading").textContent = t("owner.report_heading", { plate: reporting.plate });
}

async function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  redraw();
  await loadVehicles().catch((e) => say(e.message));
  // My alerts: the latest, then live.
  const { alerts } = await api("/alerts?limit=20").catch(() => ({ alerts: [] }));
  for (const alert of alerts.reverse()) showAlert(alert);
  // With none yet, live only (a replay from the first alert would scan every alert stored).
  const newest = alerts.length ? alerts[alerts.length - 1].seq : null;
  if (!alerts.length) $("alerts").append(el("li", t("owner.no_alerts"), "empty"));
  followAlerts(newest, (alert) => {
    showAlert(alert);
    loadVehicles().catch(() => {});
  }, showLive);
}

/** My vehicles, each with where it was last placed (an owner's own reads are logged too). */
async function loadVehicles() {
  const mine = (await api("/me/vehicles")).vehicles;
  for (const v of mine) {
    v.location = await api(`/vehicles/${v.tag}/location`).catch(() => null);
  }
  vehicles = mine;
  drawVehicles();
}

function drawVehicles() {
  const box = $("vehicles");
  if (!vehicles.length) {
    box.replaceChildren(el("p", t("owner.no_vehicles")));
    return;
  }
  box.replaceChildren(...vehicles.map((v) => {
    const card = el("div", undefined, "card vehicle");
    card.dataset.tag = v.tag;
    card.append(el("h3", describeVehicle(v, v.tag)));
    if (v.stolen) card.append(el("p", t("owner.stolen_open"), "stolen-badge"));
    card.append(el("p", v.location
      ? t("vehicle.last_seen", { when: fmtTime(v.location.seen_at), station: v.location.station })
      : t("vehicle.never_heard")));
    card.append(el("p", v.armed_at ? t("owner.armed") : t("owner.disarmed"), v.armed_at ? "armed" : "disarmed"));
    const row = el("div", undefined, "row");
    const button = (label, action, className) => {
      const b = el("button", label, className);
      b.type = "button";
      b.dataset.action = action;
      b.addEventListener("click", () => act(v, action).catch((e) => say(e.message)));
      row.append(b);
    };
    if (!v.stolen) {
      button(t(v.armed_at ? "owner.disarm" : "owner.arm"), v.armed_at ? "disarm" : "arm");
      button(t("owner.report"), "report", "danger");
    } else {
      button(t("owner.recovered"), "recovered");
    }
    card.append(row);
    return card;
  }));
}

async function act(v, action) {
  if (action === "report") return openReport(v);
  await api(`/vehicles/${v.tag}/${action}`, { method: "POST" });
  const done = { arm: "owner.armed_ok", disarm: "owner.disarmed_ok", recovered: "owner.marked_recovered" }[action];
  notice(t(done, { plate: v.plate }));
  await loadVehicles();
}

// ---- reporting a theft: when and where it was last seen ----

function openReport(v) {
  reporting = v;
  $("report").hidden = false;
  $("report-heading").textContent = t("owner.report_heading", { plate: v.plate });
  // Default: now, in the phone's own time (datetime-local has no zone).
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60_000);
  $("last-seen-at").value = now.toISOString().slice(0, 16);
  $("last-seen-place").value = "";
  $("note").value = "";
  if (!pickMap) {
    pickMap = L.map("pick-map").setView([23.2, 116.6], 12);
    background(pickMap, $("pick-map")).catch(() => {});
    pickMap.on("click", (event) => {
      const { lat, lng } = event.latlng;
      if (pickMarker) pickMarker.setLatLng(event.latlng);
      else pickMarker = L.marker(event.latlng).addTo(pickMap);
      $("last-seen-place").value = t("owner.map_pick", { lat: lat.toFixed(5), lon: lng.toFixed(5) });
    });
  }
  if (v.location) pickMap.setView([v.location.lat, v.location.lon], 15);
  setTimeout(() => pickMap.invalidateSize(), 0);
  $("report").scrollIntoView();
}

$("report-cancel").addEventListener("click", () => {
  reporting = null;
  $("report").hidden = true;
});

$("report").addEventListener("submit", async (event) => {
  event.preventDefault();
  const v = reporting;
  if (!v) return;
  const when = new Date($("last-seen-at").value);
  try {
    await api(`/vehicles/${v.tag}/theft`, {
      method: "POST",
      body: {
        last_seen_at: (when > new Date() ? new Date() : when).toISOString(),
        last_seen_place: $("last-seen-place").value.trim() || null,
        note: $("note").value.trim() || null,
      },
    });
    reporting = null;
    $("report").hidden = true;
    notice(t("owner.reported", { plate: v.plate }));
    await loadVehicles();
  } catch (error) {
    say(error.message);
  }
});

// ---- my alerts ----

function showAlert(alert) {
  if (alertItems.has(alert.seq)) return;
  for (const empty of $("alerts").querySelectorAll(".empty")) empty.remove();
  const item = el("li", alertLine(alert));
  item.alert = alert;
  item.dataset.kind = alert.kind;
  item.dataset.seq = alert.seq;
  $("alerts").prepend(item);
  alertItems.set(alert.seq, item);
}

if (session.token && session.role === "owner") start();
