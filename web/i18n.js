// The pages' words in English and Simplified Chinese, and dates and numbers formatted for the
// language. The language is the browser's (zh* → Chinese, else English) until the user picks one
// (kept in localStorage). Static text carries data-i18n="key" (its text), data-i18n-placeholder
// or data-i18n-title; script text goes through t("key", {name: value}).
"use strict";

const MESSAGES = {
  en: {
    "app.title": "TagWatch — live map",
    "owner.title": "TagWatch — my vehicles",
    "login.officers": "Officers and dispatchers: sign in to see live alerts.",
    "login.owners": "Vehicle owners: sign in to guard your vehicles and report a theft.",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Sign-in failed",
    "login.not_officer": "This map is for officers and dispatchers. Owners: use /owner.",
    "login.not_owner": "This app is for vehicle owners. Officers: use the map at /.",
    "session.ended": "Your session has ended: sign in again.",
    "signout": "Sign out",
    "live.connecting": "connecting…",
    "live.on": "live",
    "live.reconnecting": "reconnecting…",
    "purpose.label": "Purpose",
    "purpose.placeholder": "case number or reason",
    "purpose.set": "Set",
    "purpose.none": "No purpose set: every query of movements states one and is audited.",
    "purpose.current": "Queries are logged for: {purpose}",
    "purpose.needed": "Set a purpose first (a case number or a reason): every query is audited.",
    "vehicle.heading": "Vehicle",
    "vehicle.plate_placeholder": "plate, e.g. 粤A·B1234",
    "vehicle.find": "Find",
    "vehicle.tag_placeholder": "tag number",
    "vehicle.track": "Track (24 h)",
    "vehicle.none_found": "No vehicle has a plate starting with {plate}.",
    "vehicle.more": "More vehicles match: type more of the plate.",
    "vehicle.stolen": "STOLEN",
    "vehicle.never_heard": "never heard",
    "vehicle.last_seen": "last seen {when} at station {station}",
    "track.visits": "Tag {tag}: {count} places {span}",
    "track.visits_one": "Tag {tag}: one place {span}",
    "track.span_last": "in the last 24 h",
    "track.span_to": "in the 24 h to {when}",
    "track.at": "{i}/{n}: station {station}, {from} – {to}",
    "export.label": "Export",
    "area.heading": "Area",
    "area.near": "Tags near me (500 m)",
    "area.through": "Tags through view (last hour)",
    "area.near_count": "{count} tags within 500 m",
    "area.through_count": "{count} tags passed through the view",
    "area.shown": "{shown} of {total} shown",
    "area.truncated": "the answer was cut at the limit: narrow the area or the time",
    "alerts.heading": "Alerts",
    "alerts.history": "Recent alerts, then live",
    "alerts.older": "Older alerts",
    "alert.station_subject": "station {station}",
    "alert.tag_subject": "{vehicle} at station {station}",
    "alert.late": "late",
    "alert.status.open": "open",
    "alert.status.accepted": "accepted",
    "alert.status.rejected": "rejected",
    "alert.likely_next": "Likely next stations",
    "action.accepted": "accepted",
    "action.rejected": "rejected",
    "action.dispatched": "dispatched",
    "alert.eta": "station {station}: {probability}, in about {eta} ({low}–{high})",
    "alert.eta_single": "station {station}: {probability}, in about {eta}",
    "alert.nearest_units": "Nearest units",
    "alert.no_units": "No available unit has reported its position.",
    "alert.accept": "Accept",
    "alert.reject": "Reject",
    "alert.dispatch": "Dispatch {unit}",
    "alert.track": "Track",
    "alert.reason": "Reason",
    "alert.reason_other": "Other (type it)",
    "alert.confirm": "Confirm",
    "alert.cancel": "Cancel",
    "alert.dispatch_confirm": "Send {unit} ({distance}) to this alert?",
    "alert.decided": "Alert #{seq} is now {status}.",
    "alert.dispatched": "{unit} sent to alert #{seq}.",
    "reasons.accept.confirmed_visually": "Vehicle confirmed by sight",
    "reasons.accept.plate_matches": "Plate matches the report",
    "reasons.accept.pursuing": "Unit pursuing",
    "reasons.reject.owner_riding": "The owner is riding it",
    "reasons.reject.cloned_tag": "Cloned or misread tag",
    "reasons.reject.already_recovered": "Already recovered",
    "reasons.reject.duplicate": "Duplicate of another alert",
    "layers.stations": "Stations",
    "layers.units": "Patrol units",
    "layers.alerts": "Alerts",
    "layers.predicted": "Predicted next stations",
    "layers.geofences": "Geofences",
    "layers.precincts": "Precincts",
    "layers.dens": "Where stolen vehicles go dark",
    "station.ok": "ok",
    "station.no_heartbeat": "no heartbeat yet",
    "station.silent": "silent since {when}",
    "station.backlog": "backlog {count}",
    "unit.available": "available",
    "unit.busy": "on a job",
    "unit.line": "{unit} ({officer}): {state}, reported {when}",
    "den.line": "{count} stolen vehicles went dark here",
    "kind.stolen_sighting": "stolen vehicle sighted",
    "kind.tag_tamper": "tag tampered",
    "kind.panic": "panic button",
    "kind.low_battery": "low battery",
    "kind.clone_suspected": "cloned tag suspected",
    "kind.armed_moved": "armed vehicle moved",
    "kind.geofence": "geofence",
    "kind.companion_missing": "companion missing",
    "kind.station_silent": "station silent",
    "kind.station_clock_skew": "station clock off",
    "kind.station_back": "station back",
    "kind.station_power_fault": "station power fault",
    "kind.station_overheat": "station overheating",
    "kind.station_backlog": "station backlog",
    "kind.power_cut": "tracker power cut",
    "cases.heading": "Open cases",
    "cases.none": "No open theft case.",
    "cases.unassigned": "unassigned",
    "cases.assigned": "assigned to {name}",
    "cases.latest": "last sighted {when} at station {station}",
    "cases.not_sighted": "not sighted since reported",
    "cases.opened": "Case #{id}, opened {when} ({source})",
    "cases.source.report": "reported",
    "cases.source.hotlist": "from the stolen-vehicle list",
    "cases.expires": "the list's entry lapses {when}",
    "cases.sightings": "{count} sightings",
    "cases.sightings_one": "one sighting",
    "cases.use_purpose": "Work on this case (set as purpose)",
    "cases.assign_me": "Assign to me",
    "cases.recovered": "Recovered",
    "cases.recovered_confirm": "Close case #{id}: {vehicle} recovered?",
    "cases.closed": "Case #{id} closed: recovered.",
    "cases.history.assigned": "{when} {by}: assigned to {detail}",
    "cases.history.unassigned": "{when} {by}: unassigned",
    "cases.history.closed": "{when} {by}: closed ({detail})",
    "cases.purpose": "case #{id}",
    "lang.label": "Language",
    "owner.vehicles": "My vehicles",
    "owner.no_vehicles": "No vehicle is registered to you yet: ask the registration desk.",
    "owner.armed": "Armed (guarded where it was parked)",
    "owner.disarmed": "Not armed",
    "owner.arm": "Arm",
    "owner.disarm": "Disarm",
    "owner.report": "Report stolen",
    "owner.recovered": "Mark recovered",
    "owner.stolen_open": "Reported stolen: officers are alerted at every sighting.",
    "owner.report_heading": "Report {plate} stolen",
    "owner.last_seen_at": "When did you last see it?",
    "owner.last_seen_place": "Where? (tap the map or type)",
    "owner.note": "Anything else (optional)",
    "owner.submit_report": "Report the theft",
    "owner.reported": "Theft reported. Officers are looking for {plate}.",
    "owner.marked_recovered": "{plate} marked recovered.",
    "owner.alerts": "My alerts",
    "owner.no_alerts": "No alerts.",
    "owner.map_pick": "Picked: {lat}, {lon}",
    "owner.armed_ok": "{plate} is armed.",
    "owner.disarmed_ok": "{plate} is disarmed.",
  },
  zh: {
    "app.title": "TagWatch — 实时地图",
    "owner.title": "TagWatch — 我的车辆",
    "login.officers": "民警和调度员：登录后查看实时警报。",
    "login.owners": "车主：登录后可设防车辆、报告被盗。",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "登录失败",
    "login.not_officer": "本地图供民警和调度员使用。车主请访问 /owner。",
    "login.not_owner": "本应用供车主使用。民警请使用地图 /。",
    "session.ended": "会话已结束，请重新登录。",
    "signout": "退出",
    "live.connecting": "连接中…",
    "live.on": "实时",
    "live.reconnecting": "重新连接中…",
    "purpose.label": "查询事由",
    "purpose.placeholder": "案件编号或事由",
    "purpose.set": "设置",
    "purpose.none": "未设置事由：每次查询轨迹都须说明事由并记入审计日志。",
    "purpose.current": "查询记录事由：{purpose}",
    "purpose.needed": "请先设置事由（案件编号或原因）：每次查询都会被审计。",
    "vehicle.heading": "车辆",
    "vehicle.plate_placeholder": "车牌，例如 粤A·B1234",
    "vehicle.find": "查找",
    "vehicle.tag_placeholder": "标签号",
    "vehicle.track": "轨迹（24 小时）",
    "vehicle.none_found": "没有车牌以 {plate} 开头的车辆。",
    "vehicle.more": "匹配的车辆更多：请输入更完整的车牌。",
    "vehicle.stolen": "被盗",
    "vehicle.never_heard": "从未被探测到",
    "vehicle.last_seen": "最后于 {when} 在基站 {station} 出现",
    "track.visits": "标签 {tag}：{span}经过 {count} 处",
    "track.visits_one": "标签 {tag}：{span}经过 1 处",
    "track.span_last": "最近 24 小时内",
    "track.span_to": "截至 {when} 的 24 小时内",
    "track.at": "{i}/{n}：基站 {station}，{from} – {to}",
    "export.label": "导出",
    "area.heading": "区域",
    "area.near": "我附近的标签（500 米）",
    "area.through": "经过视野的标签（最近 1 小时）",
    "area.near_count": "500 米内有 {count} 个标签",
    "area.through_count": "{count} 个标签经过视野",
    "area.shown": "显示 {shown} / {total}",
    "area.truncated": "结果已达上限被截断：请缩小区域或时间范围",
    "alerts.heading": "警报",
    "alerts.history": "最近的警报，随后实时更新",
    "alerts.older": "更早的警报",
    "alert.station_subject": "基站 {station}",
    "alert.tag_subject": "{vehicle}，基站 {station}",
    "alert.late": "迟报",
    "alert.status.open": "待处理",
    "alert.status.accepted": "已确认",
    "alert.status.rejected": "已排除",
    "alert.likely_next": "可能经过的下一个基站",
    "action.accepted": "确认",
    "action.rejected": "排除",
    "action.dispatched": "派遣",
    "alert.eta": "基站 {station}：{probability}，约 {eta} 后（{low}–{high}）",
    "alert.eta_single": "基站 {station}：{probability}，约 {eta} 后",
    "alert.nearest_units": "最近的巡逻组",
    "alert.no_units": "没有空闲巡逻组报告位置。",
    "alert.accept": "确认",
    "alert.reject": "排除",
    "alert.dispatch": "派遣 {unit}",
    "alert.track": "轨迹",
    "alert.reason": "原因",
    "alert.reason_other": "其他（请填写）",
    "alert.confirm": "确定",
    "alert.cancel": "取消",
    "alert.dispatch_confirm": "派遣 {unit}（{distance}）处理此警报？",
    "alert.decided": "警报 #{seq} 已{status}。",
    "alert.dispatched": "已派遣 {unit} 处理警报 #{seq}。",
    "reasons.accept.confirmed_visually": "目视确认车辆",
    "reasons.accept.plate_matches": "车牌与报案一致",
    "reasons.accept.pursuing": "巡逻组正在追踪",
    "reasons.reject.owner_riding": "车主本人在骑行",
    "reasons.reject.cloned_tag": "标签被克隆或误读",
    "reasons.reject.already_recovered": "车辆已找回",
    "reasons.reject.duplicate": "与其他警报重复",
    "layers.stations": "基站",
    "layers.units": "巡逻组",
    "layers.alerts": "警报",
    "layers.predicted": "预测的下一个基站",
    "layers.geofences": "电子围栏",
    "layers.precincts": "辖区",
    "layers.dens": "被盗车辆消失地点",
    "station.ok": "正常",
    "station.no_heartbeat": "尚无心跳",
    "station.silent": "自 {when} 起无信号",
    "station.backlog": "积压 {count}",
    "unit.available": "空闲",
    "unit.busy": "执行任务中",
    "unit.line": "{unit}（{officer}）：{state}，{when} 报告",
    "den.line": "{count} 辆被盗车辆在此消失",
    "kind.stolen_sighting": "发现被盗车辆",
    "kind.tag_tamper": "标签被破坏",
    "kind.panic": "紧急按钮",
    "kind.low_battery": "电量低",
    "kind.clone_suspected": "疑似克隆标签",
    "kind.armed_moved": "设防车辆被移动",
    "kind.geofence": "电子围栏",
    "kind.companion_missing": "同行标签缺失",
    "kind.station_silent": "基站无信号",
    "kind.station_clock_skew": "基站时钟偏差",
    "kind.station_back": "基站恢复",
    "kind.station_power_fault": "基站电源故障",
    "kind.station_overheat": "基站过热",
    "kind.station_backlog": "基站数据积压",
    "kind.power_cut": "定位器断电",
    "cases.heading": "未结案件",
    "cases.none": "没有未结的被盗案件。",
    "cases.unassigned": "未指派",
    "cases.assigned": "已指派给 {name}",
    "cases.latest": "最后于 {when} 在基站 {station} 被发现",
    "cases.not_sighted": "报案后尚未被发现",
    "cases.opened": "案件 #{id}，{when} 立案（{source}）",
    "cases.source.report": "报案",
    "cases.source.hotlist": "来自被盗车辆名单",
    "cases.expires": "名单条目于 {when} 失效",
    "cases.sightings": "发现 {count} 次",
    "cases.sightings_one": "发现 1 次",
    "cases.use_purpose": "办理此案（设为查询事由）",
    "cases.assign_me": "指派给我",
    "cases.recovered": "已找回",
    "cases.recovered_confirm": "结案 #{id}：{vehicle} 已找回？",
    "cases.closed": "案件 #{id} 已结案：车辆已找回。",
    "cases.history.assigned": "{when} {by}：指派给 {detail}",
    "cases.history.unassigned": "{when} {by}：取消指派",
    "cases.history.closed": "{when} {by}：结案（{detail}）",
    "cases.purpose": "案件 #{id}",
    "lang.label": "语言",
    "owner.vehicles": "我的车辆",
    "owner.no_vehicles": "您名下还没有登记车辆：请到登记处办理。",
    "owner.armed": "已设防（在停放处守护）",
    "owner.disarmed": "未设防",
    "owner.arm": "设防",
    "owner.disarm": "撤防",
    "owner.report": "报告被盗",
    "owner.recovered": "已找回",
    "owner.stolen_open": "已报告被盗：每次发现都会通知民警。",
    "owner.report_heading": "报告 {plate} 被盗",
    "owner.last_seen_at": "您最后一次看到它是什么时候？",
    "owner.last_seen_place": "在哪里？（点击地图或输入）",
    "owner.note": "其他说明（可选）",
    "owner.submit_report": "提交报案",
    "owner.reported": "已报案。民警正在寻找 {plate}。",
    "owner.marked_recovered": "{plate} 已标记为找回。",
    "owner.alerts": "我的警报",
    "owner.no_alerts": "暂无警报。",
    "owner.map_pick": "已选择：{lat}，{lon}",
    "owner.armed_ok": "{plate} 已设防。",
    "owner.disarmed_ok": "{plate} 已撤防。",
  },
};

const LANGS = { en: "English", zh: "中文" };

/** The language in use: the user's pick, else the browser's. */
function pickLanguage() {
  const chosen = localStorage.getItem("tagwatch-lang");
  if (chosen && MESSAGES[chosen]) return chosen;
  const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
  return browser.toLowerCase().startsWith("zh") ? "zh" : "en";
}

let lang = pickLanguage();
const locale = () => (lang === "zh" ? "zh-CN" : "en-GB");

/** The text of `key` with `{name}` filled from `vars`; the English one if missing. */
function t(key, vars = {}) {
  const text = MESSAGES[lang][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A date and time, with the date (an officer's shift crosses midnight). */
function fmtTime(iso) {
  if (!iso) return "?";
  return new Intl.DateTimeFormat(locale(), {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).format(new Date(iso));
}

function fmtNumber(n, digits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(n);
}

function fmtPercent(p) {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(p);
}

/** Metres, or kilometres from 1 km. */
function fmtDistance(m) {
  return m >= 1000 ? `${fmtNumber(m / 1000, 1)} km` : `${fmtNumber(Math.round(m))} m`;
}

/** A duration rounded as one says it: to 10 s under two minutes, else to the minute. */
function fmtDuration(seconds) {
  const s = Math.max(0, seconds);
  if (s < 120) {
    const rounded = Math.max(10, Math.round(s / 10) * 10);
    return lang === "zh" ? `${rounded} 秒` : `${rounded} s`;
  }
  const minutes = Math.round(s / 60);
  return lang === "zh" ? `${minutes} 分钟` : `${minutes} min`;
}

/** Fills every marked element under `root` with the language's text. */
function applyI18n(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

/** A <select> that switches the language; `onChange` redraws what script wrote. */
function languageSwitcher(select, onChange) {
  select.replaceChildren(...Object.entries(LANGS).map(([code, name]) => new Option(name, code, false, code === lang)));
  select.addEventListener("change", () => {
    lang = select.value;
    localStorage.setItem("tagwatch-lang", lang);
    applyI18n();
    onChange();
  });
}
