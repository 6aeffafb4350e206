//! Makes sure the web map's vendored assets (Leaflet, from npm with the lockfile in `web/`) are
//! on disk before `web.rs` embeds them into the binary: on a fresh checkout this runs
//! `npm ci --omit=dev` once. Without npm the build stops with a message saying what to install.

use std::path::Path;
use std::process::Command;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    println!("cargo:rerun-if-changed=../web/package-lock.json");
    println!("cargo:rerun-if-changed=../web/node_modules/leaflet/dist/leaflet.js");
    if web.join("node_modules/leaflet/dist/leaflet.js").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--omit=dev", "--no-audit", "--no-fund"])
        .current_dir(&web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`npm ci --omit=dev` in web/ failed ({s}): the web map needs Leaflet from the npm registry"),
        Err(e) => panic!("could not run npm ({e}): install Node.js and npm (Debian: apt install nodejs npm) to build the web map's assets"),
    }
}
