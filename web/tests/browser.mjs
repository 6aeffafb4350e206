// The pages in a real browser (Debian's Chromium, driven by playwright-core), against a TagWatch
// demo (server + simulator): an officer's shift and an owner's evening, in English and in
// Simplified Chinese (the browser's language picks it), with screenshots.
//
// Officer (dispatcher), English: a wrong password refused; no query without a purpose; a stolen
// vehicle's alert arrives live naming the vehicle; after a reload the history is there; plate
// search finds it, flagged stolen; the alert's predicted next stations on the map; accept with a
// reason from the list; dispatch with a confirmation; its case in the case list, worked on
// (its number the purpose) and assigned; its track drawn, replayed and exported; "near me" with
// its results exported; the case closed as recovered. Then the same console in Chinese.
// Owner, on a 360-pixel-wide phone: arm the vehicles, one moves, its alert arrives live, report
// it stolen (time and place picked on the map), mark it recovered. Then in Chinese.
//
// Usage: node tests/browser.mjs --url http://127.0.0.1:PORT --password PW --shots DIR
// Run by `cargo test` (tests/tests/browser.rs starts the demo and calls this).

import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
for (const required of ["url", "password", "shots"]) {
  if (!args[required]) {
    console.error(`missing --${required}`);
    process.exit(2);
  }
}

const step = (text) => console.log(`browser: ${text}`);
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});

/** A page in a fresh browser context speaking `locale`, failing the test on a script error. */
async function open(locale, viewport) {
  const context = await browser.newContext({ locale, viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  return page;
}

async function signIn(page, path, username) {
  await page.goto(args.url + path);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", args.password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#app:not([hidden])");
  await page.waitForSelector("#live.on", { timeout: 15_000 });
}

async function download(page, selector) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  return { name: file.suggestedFilename(), text: readFileSync(await file.path(), "utf8") };
}

async function officerShift() {
  const page = await open("en-GB", { width: 1280, height: 860 });
  await page.goto(args.url);
  check((await page.textContent("button[type=submit]")) === "Sign in", "the sign-in page is in English");
  await page.fill("input[name=username]", "dispatcher");
  await page.fill("input[name=password]", "not-the-password");
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
  step(`wrong password refused: ${await page.textContent("#login-error")}`);
  await signIn(page, "/", "dispatcher");
  check((await page.textContent("#who")).includes("dispatcher"), "the header names the user");
  const stations = await page.locator(".leaflet-overlay-pane path").count();
  check(stations > 0, "stations drawn");
  step(`signed in; alert stream live; ${stations} stations drawn`);

  // A station's name is whatever its installer typed: shown as text, never read as HTML.
  const names = await page.evaluate(() => {
    layers.stations.eachLayer((marker) => marker.openTooltip());
    const tips = [...document.querySelectorAll(".leaflet-tooltip")].map((t) => t.textContent);
    layers.stations.eachLayer((marker) => marker.closeTooltip());
    return { injected: document.querySelector("#injected") !== null, shown: tips.some((t) => t.includes("<img src=x")) };
  });
  check(!names.injected && names.shown, `a station's name was read as HTML: ${JSON.stringify(names)}`);
  step("station names shown as text");

  // No purpose set: the query is not sent, and the page says why; set, the error clears.
  await page.click("#near");
  await page.waitForFunction(() => /purpose/i.test(document.querySelector("#message").textContent));
  step(`query without a purpose refused in the page: ${await page.textContent("#message")}`);
  await page.fill("#purpose", "case DEMO-7");
  await page.click("#purpose-form button");
  check((await page.textContent("#purpose-shown")).includes("case DEMO-7"), "the purpose is shown");

  // The demo reports a vehicle stolen a few seconds in; its next sighting arrives live.
  const live = page.locator('#alerts li[data-kind="stolen_sighting"]').first();
  await live.waitFor({ timeout: 90_000 });
  const seq = await live.getAttribute("data-seq");
  const text = await live.textContent();
  const plate = await page.evaluate((s) => document.querySelector(`#alerts li[data-seq="${s}"]`).alert.vehicle.plate, seq);
  check(text.includes(plate), `the alert names the vehicle: ${text}`);
  step(`live alert: ${text}`);

  // A reload: still signed in, the name in the header, the history back before any new alert.
  await page.reload();
  await page.waitForSelector("#app:not([hidden])");
  await page.waitForSelector(`#alerts li[data-seq="${seq}"]`, { timeout: 10_000 });
  check((await page.textContent("#who")).includes("dispatcher"), "the name survives a reload");
  step(`after a reload: alert #${seq} in the history, ${await page.locator("#alerts li").count()} alerts listed`);

  // Plate search, typed loosely: the stolen vehicle, flagged.
  await page.fill("#plate", plate.replace("·", " ").toLowerCase());
  await page.click("#plate-search button");
  await page.waitForSelector("#plate-results li");
  const found = await page.textContent("#plate-results li");
  check(found.includes(plate) && found.includes("STOLEN"), `plate search: ${found}`);
  step(`plate search: ${found}`);

  // The alert: its predicted next stations on the map, then accept with a listed reason.
  await page.click(`#alerts li[data-seq="${seq}"]`);
  await page.waitForSelector("#alert-detail:not([hidden])");
  const predicted = await page.evaluate(() => layers.predicted.getLayers().length);
  const intercept = await page.locator("#alert-detail li").count();
  check(intercept === 0 || predicted > 0, "predicted stations drawn");
  step(`alert opened: ${intercept} predicted next stations listed, ${predicted} map layers`);
  await page.click('#alert-detail button:has-text("Accept")');
  await page.selectOption("#alert-detail select[name=reason]", { index: 1 });
  await page.click("#alert-detail button.confirm");
  await page.waitForFunction(() => /accepted/.test(document.querySelector("#alert-detail .title").textContent));
  check((await page.getAttribute(`#alerts li[data-seq="${seq}"]`, "data-status")) === "accepted", "status updated at once");
  step(`accepted: ${await page.textContent("#notice")}`);
  const dispatch = page.locator('#alert-detail button:has-text("Dispatch")').first();
  if (await dispatch.count()) {
    await dispatch.click();
    check(/Send .* to this alert\?/.test(await page.textContent("#alert-detail .decision")), "dispatch asks first");
    await page.click("#alert-detail button.confirm");
    await page.waitForFunction(() => /sent to alert/.test(document.querySelector("#notice").textContent));
    step(`dispatched: ${await page.textContent("#notice")}`);
  } else {
    step("no available unit near the alert to dispatch (the demo's units are all on jobs)");
  }

  // The case list: the stolen vehicle's case; work on it (its number becomes the purpose, by
  // the officer's click), assign it to me.
  const caseItem = page.locator("#cases li", { hasText: plate }).first();
  await caseItem.waitFor({ timeout: 15_000 });
  await caseItem.click();
  await page.waitForSelector("#case-detail:not([hidden])");
  await page.click('#case-detail button:has-text("Work on this case")');
  check(/case #\d+/.test(await page.textContent("#purpose-shown")), "the case is the purpose");
  await page.click('#case-detail button:has-text("Assign to me")');
  await page.waitForFunction(() => /assigned to dispatcher/.test(document.querySelector("#case-detail").textContent));
  step(`case: ${await page.textContent("#cases li")}; purpose ${await page.textContent("#purpose-shown")}`);

  // Its track, replayed; the alert's station on it; exported as CSV.
  await page.click('#alert-detail button:has-text("Track")');
  await page.waitForFunction(() => Number(document.querySelector("#track-info").dataset.count) > 0);
  const visits = Number(await page.getAttribute("#track-info", "data-count"));
  const station = await page.evaluate((s) => document.querySelector(`#alerts li[data-seq="${s}"]`).alert.station, seq);
  let onTrack = false;
  for (let i = visits - 1; i >= 0 && !onTrack; i--) {
    await page.locator("#slider").fill(String(i));
    onTrack = (await page.getAttribute("#at", "data-station")) === String(station);
  }
  check(onTrack, `the alert's station ${station} is on the track`);
  step(`track: ${await page.textContent("#track-info")}; the alert's station is on it`);
  const csv = await download(page, '#track-export button[data-format="csv"]');
  check(csv.text.startsWith("first_seen,last_seen,lat,lon,station"), `track CSV: ${csv.text.slice(0, 80)}`);
  step(`track exported: ${csv.name}, ${csv.text.trim().split("\n").length - 1} points`);
  const kml = await download(page, '#track-export button[data-format="kml"]');
  check(kml.text.includes("<kml"), "track KML");

  // Near me (the map centre here), results exported.
  await page.click("#near");
  await page.waitForFunction(() => /tags within 500 m/.test(document.querySelector("#area-summary").textContent));
  step(`near: ${await page.textContent("#area-summary")}`);
  const area = await download(page, '#area-export button[data-format="csv"]');
  check(area.text.startsWith("tag,plate,stolen"), `area CSV: ${area.text.slice(0, 60)}`);
  await page.click(`#alerts li[data-seq="${seq}"]`);
  await page.screenshot({ path: `${args.shots}/officer-en.png` });
  step(`screenshot ${args.shots}/officer-en.png`);
  // The shift ends with the vehicle recovered: its case closed, after a confirmation.
  await caseItem.click();
  await page.click('#case-detail button:has-text("Recovered")');
  check(/recovered\?/.test(await page.textContent("#case-detail .decision")), "closing asks first");
  await page.click("#case-detail button.confirm");
  await page.waitForFunction(() => /closed: recovered/.test(document.querySelector("#notice").textContent));
  step(`case closed: ${await page.textContent("#notice")}`);
  check(page.errors.length === 0, `page errors: ${page.errors.join("; ")}`);
  await page.context().close();
  return plate;
}

async function officerInChinese() {
  const page = await open("zh-CN", { width: 1280, height: 860 });
  await page.goto(args.url);
  check((await page.textContent("button[type=submit]")) === "登录", "the sign-in page is in Chinese");
  await signIn(page, "/", "officer");
  check((await page.textContent("#logout")) === "退出", "the console is in Chinese");
  const line = page.locator('#alerts li[data-kind="stolen_sighting"]').first();
  await line.waitFor({ timeout: 30_000 });
  const text = await line.textContent();
  check(text.includes("发现被盗车辆") && text.includes("月"), `an alert in Chinese, dated: ${text}`);
  step(`Chinese console: ${text}`);
  // The switcher: English, and back.
  await page.selectOption("#lang", "en");
  check((await page.textContent("#logout")) === "Sign out", "switched to English");
  await page.selectOption("#lang", "zh");
  await page.fill("#purpose", "案件 DEMO-7");
  await page.click("#purpose-form button");
  await line.click();
  await page.waitForSelector("#alert-detail:not([hidden])");
  await page.screenshot({ path: `${args.shots}/officer-zh.png` });
  step(`screenshot ${args.shots}/officer-zh.png`);
  check(page.errors.length === 0, `page errors: ${page.errors.join("; ")}`);
  await page.context().close();
}

async function ownerEvening() {
  const page = await open("en-GB", { width: 360, height: 740 });
  await signIn(page, "/owner", "owner");
  await page.waitForSelector(".card.vehicle");
  const cards = await page.locator(".card.vehicle").count();
  step(`owner signed in: ${cards} vehicles`);
  // Arm every vehicle that can be (one never heard yet cannot: the page says so).
  for (let i = 0; i < cards; i++) {
    const arm = page.locator(".card.vehicle").nth(i).locator('button[data-action="arm"]');
    if (await arm.count()) {
      await arm.click();
      await page.waitForTimeout(300);
    }
  }
  const armed = await page.locator(".card.vehicle .armed").count();
  check(armed > 0, "at least one vehicle armed");
  step(`${armed} vehicles armed`);
  // One rides off: the alert arrives live.
  const moved = page.locator('#alerts li[data-kind="armed_moved"]').first();
  await moved.waitFor({ timeout: 120_000 });
  const tag = await moved.evaluate((li) => li.alert.tag);
  step(`live alert: ${await moved.textContent()}`);
  const card = page.locator(`.card.vehicle[data-tag="${tag}"]`);
  await card.locator('button[data-action="report"]').click();
  await page.waitForSelector("#report:not([hidden])");
  await page.click("#pick-map", { position: { x: 150, y: 100 } });
  check((await page.inputValue("#last-seen-place")).startsWith("Picked:"), "the place picked on the map");
  await page.fill("#note", "taken from outside the gym");
  await page.click('#report button[type="submit"]');
  await page.waitForFunction(() => /Theft reported/.test(document.querySelector("#notice").textContent));
  await card.locator(".stolen-badge").waitFor();
  step(`theft reported: ${await page.textContent("#notice")}`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `fits a 360-pixel screen (${width} px wide)`);
  await page.screenshot({ path: `${args.shots}/owner-en.png`, fullPage: true });
  step(`screenshot ${args.shots}/owner-en.png`);
  await card.locator('button[data-action="recovered"]').click();
  await page.waitForFunction(() => /marked recovered/.test(document.querySelector("#notice").textContent));
  await card.locator('button[data-action="arm"], button[data-action="disarm"]').first().waitFor();
  step(`recovered: ${await page.textContent("#notice")}`);
  check(page.errors.length === 0, `page errors: ${page.errors.join("; ")}`);
  await page.context().close();
}

async function ownerInChinese() {
  const page = await open("zh-CN", { width: 360, height: 740 });
  await signIn(page, "/owner", "owner");
  await page.waitForSelector(".card.vehicle");
  check((await page.textContent("section h2")) === "我的车辆", "the owner's app is in Chinese");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `fits a 360-pixel screen (${width} px wide)`);
  await page.screenshot({ path: `${args.shots}/owner-zh.png`, fullPage: true });
  step(`screenshot ${args.shots}/owner-zh.png`);
  check(page.errors.length === 0, `page errors: ${page.errors.join("; ")}`);
  await page.context().close();
}

let failed = false;
try {
  await officerShift();
  await officerInChinese();
  await ownerEvening();
  await ownerInChinese();
  step("all pages passed");
} catch (error) {
  failed = true;
  console.error(`browser test failed: ${error.stack || error}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
