"""Schemathesis hooks for `.ci/schemathesis`: the API's rules that OpenAPI cannot state.

`positive_data_acceptance` expects every request the OpenAPI document allows to be accepted. A few
rules of the API are not about one value's form, so the document states them in words only: a
purpose must say something, a hotlist is a CSV list with a header, a precinct or a box (not both), a companion that is another registered
tag, a time that is not in the future, a password change by an account (the configured admin token
has none). Before each call of a *positive* case (data the document allows), this hook makes the
case follow those rules too, and the check stays on for every operation. Negative cases (data the
document forbids) are sent as generated. Each rule's refusal is tested by the API tests
(tests/tests/*.rs).

The rules are restated here, not imported: a change on the server that this file does not follow
shows up as a failing positive case, which is the point of the check.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import urllib.error
import urllib.request
import unicodedata

import schemathesis

BASE = os.environ["TAGWATCH_URL"]
ADMIN_TOKEN = os.environ["TAGWATCH_ADMIN_TOKEN"]
PURPOSE = "case C-2026-114"

# Operations whose `purpose` is checked when present (police-only queries require it).
PURPOSE_QUERIES = {
    "GET /api/v1/vehicles/{tag}/location",
    "GET /api/v1/vehicles/{tag}/track",
    "GET /api/v1/tags/near",
    "GET /api/v1/tags/through",
    "GET /api/v1/dens",
    "GET /api/v1/vehicles/{tag}/companions",
    "GET /api/v1/alerts",
    "GET /api/v1/alerts/stream",
    "GET /api/v1/vehicles/search",
}
BOX = ("south", "west", "north", "east")
# The longest window each time-windowed query answers (the server's MAX_WINDOW_MS and
# MAX_TRACK_WINDOW_MS).
WINDOWS = {
    "GET /api/v1/tags/through": datetime.timedelta(hours=24),
    "GET /api/v1/vehicles/{tag}/track": datetime.timedelta(days=31),
}


def _call(method: str, path: str, body: dict | None = None, token: str = ADMIN_TOKEN) -> dict:
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read()
    return json.loads(text) if text else {}


class Fixtures:
    """What the rules refer to, created once through the API: an owner account and a vehicle."""

    def __init__(self) -> None:
        self.owner = "st-owner-" + secrets.token_hex(4)
        _call("POST", "/api/v1/users", {"username": self.owner, "password": secrets.token_hex(8), "role": "owner"})
        self.precinct = _call(
            "POST", "/api/v1/precincts", {"name": "st-precinct", "area": [[0, 0], [0, 1], [1, 1], [1, 0]]}
        )["id"]
        self.vehicle = 900_000_000 + secrets.randbelow(1_000_000)
        _call(
            "POST",
            "/api/v1/vehicles",
            {"tag": self.vehicle, "plate": "ST-1", "owner_name": "Schemathesis", "owner_phone": "+1 555 0100"},
        )

        # A patrol unit, reported by a dispatcher (units report their own position).
        self.unit = "ST-UNIT-" + secrets.token_hex(3)
        token = Account().login()
        _call("POST", "/api/v1/patrol/position", {"unit": self.unit, "lat": 0.5, "lon": 0.5}, token=token)

        # Two accounts of their own: one whose sessions are logged out, one whose password changes.
        self.leaver = Account()
        self.changer = Account()
        self.changer_token = self.changer.login()


class Account:
    """A dispatcher account made for the run; passwords are hashed with argon2, so each is made
    once and signed in as needed."""

    def __init__(self) -> None:
        self.username = "st-user-" + secrets.token_hex(6)
        self.password = secrets.token_hex(8)
        _call("POST", "/api/v1/users", {"username": self.username, "password": self.password, "role": "dispatcher"})

    def login(self) -> str:
        return _call("POST", "/api/v1/login", {"username": self.username, "password": self.password}, token="")["token"]


def fresh_session(account: Account) -> str:
    """A new session of `account`, or of a new account if the run has disabled it or reset its
    password (the admin operations are fuzzed too)."""
    try:
        return account.login()
    except urllib.error.HTTPError:
        fixtures().leaver = Account()
        return fixtures().leaver.login()


_fixtures: Fixtures | None = None


def fixtures() -> Fixtures:
    global _fixtures
    if _fixtures is None:
        _fixtures = Fixtures()
    return _fixtures


def says_something(purpose: object) -> bool:
    """The server's `purpose_says_something`: 3-200 characters, at least three letters or digits,
    no control or invisible characters, not one character repeated."""
    if not isinstance(purpose, str):
        return False
    p = purpose.strip()
    meaningful = [c.lower() for c in p if c.isalnum()]
    invisible = any(
        unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") or c == "\u00ad" for c in p
    )
    return 3 <= len(p) <= 200 and len(meaningful) >= 3 and not invisible and len(set(meaningful)) > 1


def follow_box_rules(label: str, query: dict) -> None:
    """South/west below north/east; a `tags/through` box at most 0.1 degrees on a side."""
    try:
        box = {side: float(query[side]) for side in BOX}
    except (KeyError, TypeError, ValueError):
        return
    query.update(box)
    widest = 0.1 if label == "GET /api/v1/tags/through" else 360.0
    for low, high, top in (("south", "north", 90.0), ("west", "east", 180.0)):
        query[low] = min(query[low], top - widest)
        if not query[low] <= query[high] <= query[low] + widest:
            query[high] = query[low] + widest / 2


def fit_in_a_degree(body: dict) -> None:
    """A geofence's outline fits in 1 degree of latitude and longitude: scale a wider one down
    around its first vertex."""
    area = body.get("area")
    if not isinstance(area, list) or not area or not all(isinstance(p, list) and len(p) == 2 for p in area):
        return
    lat0, lon0 = area[0]
    span = max(max(abs(lat - lat0), abs(lon - lon0)) for lat, lon in area)
    if span >= 0.5:
        body["area"] = [[lat0 + (lat - lat0) * 0.4 / span, lon0 + (lon - lon0) * 0.4 / span] for lat, lon in area]


def _time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def follow_window_rules(label: str, query: dict) -> None:
    """`from` before `to` (default: now), the window no longer than the query answers; a
    companions question reaches back only as far as the tracker's memory (its default)."""
    if label == "GET /api/v1/vehicles/{tag}/companions":
        query.pop("from", None)
        query.pop("to", None)
        return
    longest = WINDOWS.get(label)
    start, end = _time(query.get("from")), _time(query.get("to"))
    if longest is None or start is None:
        return
    end = end or datetime.datetime.now(datetime.timezone.utc)
    if not datetime.timedelta(0) <= end - start <= longest:
        query["from"] = (end - longest / 2).isoformat()


def whole_numbers(value):
    """JSON Schema counts 1002.0 as an integer; the server reads integers written as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


@schemathesis.auth(refresh_interval=None)
class AdminToken:
    """Every call as the configured admin (the fixture accounts are made with it too)."""

    def get(self, case, context):
        return ADMIN_TOKEN

    def set(self, case, token, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    label = case.operation.label
    if label == "POST /api/v1/logout":
        # The admin token has no session to end: log out a session of an account instead.
        token = fresh_session(fixtures().leaver)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    if label == "POST /api/v1/hotlist":
        # A list's rules (a header naming known columns, one line per vehicle) are in the
        # description only: send a list that follows them, naming the fixture vehicle.
        case.body = f"tag,reason,reported_at\n{fixtures().vehicle},schemathesis list,2026-12-01\n"
        return
    query = case.query if isinstance(case.query, dict) else None
    body = case.body if isinstance(case.body, dict) else None
    if body is not None:
        body = case.body = whole_numbers(body)

    if query is not None and label in PURPOSE_QUERIES:
        police_only = label not in ("GET /api/v1/alerts", "GET /api/v1/alerts/stream")
        if ("purpose" in query or police_only or "tag" in query) and not says_something(query.get("purpose")):
            query["purpose"] = PURPOSE
        # A precinct that exists, or a box, not both.
        if "precinct" in query:
            query["precinct"] = fixtures().precinct
            for side in BOX:
                query.pop(side, None)
    if query is not None:
        # A box has all four sides or none.
        if not all(side in query for side in BOX):
            for side in BOX:
                query.pop(side, None)
        follow_box_rules(label, query)
        follow_window_rules(label, query)

    if body is None:
        return
    if label == "POST /api/v1/alerts/{seq}/dispatch":
        body["unit"] = fixtures().unit  # a unit that exists
        if isinstance(body.get("note"), str) and not body["note"].strip():
            body["note"] = "unit sent to the predicted station"
    elif label == "POST /api/v1/stations" and isinstance(body.get("key"), str) and not body["key"].strip("0"):
        body["key"] = secrets.token_hex(32)
    elif label == "POST /api/v1/vehicles" and "owner" in body and body["owner"] is not None:
        body["owner"] = fixtures().owner
    elif label == "PUT /api/v1/vehicles/{tag}/pair":
        body["companion"] = fixtures().vehicle  # registered, and not the generated path tag
    elif label == "POST /api/v1/cases/{id}/assign" and body.get("username") is not None:
        body["username"] = fixtures().changer.username  # an account that exists, and is police
    elif label == "POST /api/v1/webhooks":
        # A URL with a host the server can parse (the document asks only for a URI); nobody
        # listens there, so each delivery is tried and logged as failed.
        body["url"] = "http://127.0.0.1:9/schemathesis"
    elif label == "POST /api/v1/geofences":
        if not body.get("on_enter") and not body.get("on_leave"):
            body["on_enter"] = True
        fit_in_a_degree(body)
    elif label == "POST /api/v1/vehicles/{tag}/theft":
        when = _time(body.get("last_seen_at"))
        now = datetime.datetime.now(datetime.timezone.utc)
        if when is not None and when > now:
            body["last_seen_at"] = (now - datetime.timedelta(minutes=5)).isoformat()
    elif label == "POST /api/v1/me/password":
        # The admin token has no password: an account changes its own.
        changer = fixtures().changer
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {fixtures().changer_token}"}
        body["current"] = changer.password


@schemathesis.hook
def after_call(context, case, response) -> None:
    """A password changed is the one to give next time."""
    if case.operation.label == "POST /api/v1/me/password" and 200 <= response.status_code < 300:
        fixtures().changer.password = case.body["new"]
