// What the officer's console and the owner's app share: the session, calls to the HTTP API,
// the live alert stream, and how a vehicle and an alert are described. Plain browser JavaScript.
"use strict";

const $ = (id) => document.getElementById(id);

/** The signed-in session, kept for the tab (a reload keeps it; closing the tab ends it). */
const session = {
  get token() { return sessionStorage.getItem("tagwatch-token"); },
  get role() { return sessionStorage.getItem("tagwatch-role"); },
  get username() { return sessionStorage.getItem("tagwatch-username"); },
  save(token, role, username) {
    sessionStorage.setItem("tagwatch-token", token);
    sessionStorage.setItem("tagwatch-role", role);
    sessionStorage.setItem("tagwatch-username", username);
  },
  clear() {
    for (const key of ["tagwatch-token", "tagwatch-role", "tagwatch-username"]) sessionStorage.removeItem(key);
  },
};

/** Text for a tooltip or popup, which Leaflet would otherwise read as HTML: names and plates
 * are whatever someone typed, and must show as typed, never run. */
function plain(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

/** An element with text, for building lists without HTML strings. */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** An error for the user (`#message`), replacing any notice; "" clears it. */
function say(message) {
  $("message").textContent = message || "";
  if (message) $("notice").textContent = "";
}

/** A plain notice that something was done (`#notice`), replacing any error. */
function notice(message) {
  $("notice").textContent = message || "";
  if (message) $("message").textContent = "";
}

function signOut(message) {
  session.clear();
  if (message) sessionStorage.setItem("tagwatch-farewell", message);
  location.reload();
}

/** Calls the API with the session's token; throws an Error with the API's message. */
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    signOut(t("session.ended"));
    throw new Error(t("session.ended"));
  }
  if (options.raw) {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response;
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new Error(body && body.error ? body.error.message : `HTTP ${response.status}`);
  }
  return body;
}

/** Wires a sign-in form: on success saves the session and calls `start`; `allowed(role)` says
 * who this page is for (else `refusal` is shown). */
function wireLogin(form, errorBox, allowed, refusal, start) {
  const farewell = sessionStorage.getItem("tagwatch-farewell");
  if (farewell) {
    errorBox.textContent = farewell;
    sessionStorage.removeItem("tagwatch-farewell");
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    errorBox.textContent = "";
    const username = data.get("username");
    const response = await fetch("/api/v1/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password: data.get("password") }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      errorBox.textContent = body && body.error ? body.error.message : t("login.failed");
      return;
    }
    if (!allowed(body.role)) {
      errorBox.textContent = t(refusal);
      return;
    }
    session.save(body.token, body.role, username);
    start(true);
  });
}

/** Follows the live alert stream (SSE over fetch, so the token travels in a header), resuming
 * after the last alert seen; `onAlert(alert)` for each, `onState("on"|"reconnecting")`. */
async function followAlerts(after, onAlert, onState) {
  let last = after;
  for (;;) {
    try {
      const headers = { Authorization: `Bearer ${session.token}` };
      if (last !== null && last !== undefined) headers["Last-Event-ID"] = String(last);
      const response = await fetch("/api/v1/alerts/stream", { headers });
      if (response.status === 401) return signOut(t("session.ended"));
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      onState("on");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.event === "alert") {
            last = event.id;
            onAlert(JSON.parse(event.data));
          } else if (event.event === "session_ended") {
            return signOut(t("session.ended"));
          }
        }
      }
    } catch (error) {
      console.warn("alert stream", error);
    }
    onState("reconnecting");
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

/** A vehicle as an officer says it: `粤A·B1234 (red Honda Wave 110)`; the tag when unregistered. */
function describeVehicle(label, tag) {
  if (!label) return `#${tag}`;
  const look = [label.colour, label.make, label.model].filter(Boolean).join(" ");
  return look ? `${label.plate} (${look})` : label.plate;
}

function kindName(kind) {
  return t(`kind.${kind}`);
}

/** One line for an alert: its kind, what it is about, when (with the date). */
function alertLine(alert) {
  const subject = alert.tag === null
    ? t("alert.station_subject", { station: alert.station })
    : t("alert.tag_subject", { vehicle: describeVehicle(alert.vehicle, alert.tag), station: alert.station });
  const late = alert.late ? ` (${t("alert.late")})` : "";
  return `#${alert.seq} ${kindName(alert.kind)}: ${subject}, ${fmtTime(alert.seen_at)}${late}`;
}

/** Saves `text` as a file named `name` (exports made in the page). */
function saveFile(name, type, text) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** The map's background: the configured tiles, or a plain one with the roads the server gives
 * (the demo's simulated city). */
async function background(map, container) {
  const config = await fetch("/config.json").then((r) => r.json());
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: "map tiles" }).addTo(map);
    return;
  }
  container.classList.add("offline");
  const roads = L.layerGroup().addTo(map);
  for (const road of config.roads || []) {
    L.polyline(road, { color: "#fff", weight: 6, opacity: 0.9, interactive: false }).addTo(roads);
  }
}

/** The live badge: `connecting`, `on` or `reconnecting`, in the page's language. */
let liveState = "connecting";
function showLive(state) {
  if (state) liveState = state;
  const badge = $("live");
  badge.textContent = t(`live.${liveState}`);
  badge.classList.toggle("on", liveState === "on");
}
