// The officer's map in a real browser (Debian's Chromium, driven by playwright-core), against a
// TagWatch server fed by the simulator: sign in, see a stolen-vehicle alert arrive live, open it,
// draw that vehicle's track, replay it, and take a screenshot.
//
// Usage: node tests/browser.mjs --url http://127.0.0.1:PORT --password PW --screenshot FILE
// Run by `cargo test` (tests/tests/browser.rs starts the server and calls this).

import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
for (const required of ["url", "password", "screenshot"]) {
  if (!args[required]) {
    console.error(`missing --${required}`);
    process.exit(2);
  }
}

const step = (text) => console.log(`browser: ${text}`);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(args.url);
  step("page loaded");
  // A wrong password is refused on the page itself.
  await page.fill("input[name=username]", "officer");
  await page.fill("input[name=password]", "not-the-password");
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
  step(`wrong password refused: ${await page.textContent("#login-error")}`);

  await page.fill("input[name=password]", args.password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#app:not([hidden])");
  await page.waitForSelector("#live.on", { timeout: 15_000 });
  step("signed in; alert stream live");
  const stations = await page.locator(".leaflet-overlay-pane path").count();
  if (stations === 0) throw new Error("no stations drawn on the map");
  step(`${stations} stations drawn`);

  // A station's name is whatever its installer typed: shown as text, never read as HTML (the
  // test provisions one named "<img src=x id=injected>").
  const names = await page.evaluate(() => {
    stationLayer.eachLayer((marker) => marker.openTooltip());
    const tips = [...document.querySelectorAll(".leaflet-tooltip")].map((t) => t.textContent);
    return { injected: document.querySelector("#injected") !== null, shown: tips.some((t) => t.includes("<img src=x")) };
  });
  if (names.injected || !names.shown) throw new Error(`a station's name was read as HTML: ${JSON.stringify(names)}`);
  await page.evaluate(() => stationLayer.eachLayer((marker) => marker.closeTooltip()));
  step("station names shown as text");

  // The demo reports a vehicle stolen a few seconds in; its next sighting must appear live.
  const alert = page.locator('#alerts li[data-kind="stolen_sighting"]').first();
  await alert.waitFor({ timeout: 90_000 });
  const text = await alert.textContent();
  step(`live alert: ${text}`);

  await alert.click();
  await page.waitForSelector("#alert-detail:not([hidden])");
  const detail = await page.textContent("#alert-detail");
  if (!detail.includes("stolen sighting")) throw new Error(`alert detail: ${detail}`);
  step("alert opened");

  await page.click('#alert-detail button:has-text("Track")');
  await page.waitForFunction(() => /\d+ visits/.test(document.querySelector("#track-info").textContent));
  const info = await page.textContent("#track-info");
  const visits = Number(info.match(/(\d+) visits/)[1]);
  if (visits < 1) throw new Error(`track: ${info}`);
  step(`track drawn: ${info}`);
  // Replay: the slider's first position moves the marker to the track's first visit.
  await page.locator("#slider").fill("0");
  const at = await page.textContent("#at");
  if (!at.startsWith(`1/${visits}`)) throw new Error(`replay: ${at}`);
  step(`replay at ${at}`);
  // The sighting that raised the alert is on the track (the simulated stations' clocks run ahead
  // of this one, so a track up to "now" alone would miss it).
  const station = text.match(/at station (\d+)/)[1];
  let onTrack = false;
  for (let i = visits - 1; i >= 0 && !onTrack; i--) {
    await page.locator("#slider").fill(String(i));
    onTrack = (await page.textContent("#at")).includes(`station #${station},`);
  }
  if (!onTrack) throw new Error(`the alert's station ${station} is not on the track: ${info}`);
  step(`the alert's station ${station} is on the track`);

  // "Near me" (no geolocation here: the map centre), with the purpose the track query set.
  await page.click("#near");
  await page.waitForFunction(() => /tags within 500 m/.test(document.querySelector("#area-results").textContent));
  step(`near: ${await page.textContent("#area-results li")}`);

  await page.screenshot({ path: args.screenshot });
  step(`screenshot ${args.screenshot}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
} catch (error) {
  failed = true;
  console.error(`browser test failed: ${error.stack || error}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
