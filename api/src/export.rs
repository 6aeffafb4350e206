//! # A track exported as a file: CSV, GPX or KML (`GET /vehicles/{tag}/track?format=`).
//!
//! The same points as the GeoJSON answer, for the tools a force already has: a spreadsheet
//! (CSV), a GPS or mapping program (GPX), Google Earth (KML). Every value written is a number, a
//! time or one of a few fixed words, so nothing needs escaping beyond what is written here.

use crate::answers::Track;
use std::fmt::Write;

/// A file format a track can be exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    Csv,
    Gpx,
    Kml,
}

impl Format {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "geojson" => Some(Format::GeoJson),
            "csv" => Some(Format::Csv),
            "gpx" => Some(Format::Gpx),
            "kml" => Some(Format::Kml),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::GeoJson => "application/geo+json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Gpx => "application/gpx+xml",
            Format::Kml => "application/vnd.google-earth.kml+xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Csv => "csv",
            Format::Gpx => "gpx",
            Format::Kml => "kml",
        }
    }
}

/// One row per point: when the vehicle was first and last there, where, what placed it.
pub fn csv(track: &Track) -> String {
    let mut out = String::from("first_seen,last_seen,lat,lon,station,source,best_rssi,reads\n");
    for f in &track.features {
        let p = &f.properties;
        let [lon, lat] = f.geometry.coordinates;
        let _ = writeln!(
            out,
            "{},{},{lat:.7},{lon:.7},{},{},{},{}",
            p.first_seen, p.last_seen, p.station, p.source, p.best_rssi, p.reads
        );
    }
    out
}

/// A GPX 1.1 track: one segment, a point per place at its first time.
pub fn gpx(track: &Track) -> String {
    let w = &track.properties;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <gpx version=\"1.1\" creator=\"TagWatch\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n",
    );
    let _ = writeln!(
        out,
        "  <trk><name>tag {} {} to {}</name><trkseg>",
        w.tag, w.from, w.to
    );
    for f in &track.features {
        let [lon, lat] = f.geometry.coordinates;
        let _ = writeln!(
            out,
            "    <trkpt lat=\"{lat:.7}\" lon=\"{lon:.7}\"><time>{}</time><src>{}</src></trkpt>",
            f.properties.first_seen, f.properties.source
        );
    }
    out.push_str("  </trkseg></trk>\n</gpx>\n");
    out
}

/// A KML document: the path as a line, and a placemark per point with its times.
pub fn kml(track: &Track) -> String {
    let w = &track.properties;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\n",
    );
    let _ = writeln!(out, "  <name>tag {} {} to {}</name>", w.tag, w.from, w.to);
    out.push_str("  <Placemark><name>path</name><LineString><coordinates>");
    for f in &track.features {
        let [lon, lat] = f.geometry.coordinates;
        let _ = write!(out, "{lon:.7},{lat:.7} ");
    }
    out.push_str("</coordinates></LineString></Placemark>\n");
    for f in &track.features {
        let [lon, lat] = f.geometry.coordinates;
        let p = &f.properties;
        let _ = writeln!(
            out,
            "  <Placemark><name>{}</name><TimeSpan><begin>{}</begin><end>{}</end></TimeSpan>\
             <Point><coordinates>{lon:.7},{lat:.7}</coordinates></Point></Placemark>",
            p.source, p.first_seen, p.last_seen
        );
    }
    out.push_str("</Document></kml>\n");
    out
}
