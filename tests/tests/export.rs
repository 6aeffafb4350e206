//! A vehicle's track exported as a file an officer's tools open: CSV, GPX and KML, the same
//! points as the GeoJSON answer, each download stating its purpose and written to the audit log
//! like the query it is; an unknown format is refused by name (and that refusal audited too).

mod support;

use support::{client, get, provision, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;

async fn download(server: &TestServer, query: &str) -> (u16, String, String, String) {
    let response = client()
        .get(server.url(&format!("/api/v1/vehicles/42/track?{query}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (kind, disposition) = (header("content-type"), header("content-disposition"));
    (
        status,
        kind,
        disposition,
        response.text().await.expect("body"),
    )
}

#[tokio::test]
async fn a_track_downloads_as_csv_gpx_and_kml_with_its_points_and_an_audit_entry_each() {
    let server = TestServer::start().await;
    provision(&server, 1001, 42).await;
    provision(&server, 1002, 43).await;
    let (a, b) = (
        TestStation::udp(1001, 1, server.udp()).await,
        TestStation::udp(1002, 1, server.udp()).await,
    );
    let t0 = tagwatch_model::time::now_ms() - 120_000;
    assert_eq!(
        a.exchange(&a.detections(1, t0, &[42])).await,
        AckStatus::Accepted
    );
    assert_eq!(
        b.exchange(&b.detections(1, t0 + 90_000, &[42])).await,
        AckStatus::Accepted
    );
    let (p, q) = (
        support::station(1001).position,
        support::station(1002).position,
    );

    let (status, kind, disposition, csv) = download(&server, "purpose=case-1&format=csv").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(disposition, "attachment; filename=\"tag-42-track.csv\"");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "first_seen,last_seen,lat,lon,station,source,best_rssi,reads"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[0], tagwatch_model::time::to_rfc3339(t0));
    assert!(
        (first[2].parse::<f64>().expect("lat") - p.lat).abs() < 1e-6,
        "{csv}"
    );
    assert!(
        (first[3].parse::<f64>().expect("lon") - p.lon).abs() < 1e-6,
        "{csv}"
    );
    assert_eq!((first[4], first[5]), ("1001", "station"));
    assert!(lines[2].contains(",1002,station,"), "{csv}");

    let (status, kind, disposition, gpx) = download(&server, "purpose=case-1&format=gpx").await;
    assert_eq!((status, kind.as_str()), (200, "application/gpx+xml"));
    assert!(disposition.ends_with("tag-42-track.gpx\""));
    assert!(
        gpx.starts_with("<?xml") && gpx.contains("<gpx version=\"1.1\""),
        "{gpx}"
    );
    assert_eq!(gpx.matches("<trkpt ").count(), 2, "{gpx}");
    assert!(
        gpx.contains(&format!(
            "<trkpt lat=\"{:.7}\" lon=\"{:.7}\">",
            q.lat, q.lon
        )),
        "{gpx}"
    );
    assert!(gpx.contains(&format!(
        "<time>{}</time>",
        tagwatch_model::time::to_rfc3339(t0 + 90_000)
    )));

    let (status, kind, _, kml) = download(&server, "purpose=case-1&format=kml").await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "application/vnd.google-earth.kml+xml")
    );
    assert!(kml.contains("<LineString><coordinates>"), "{kml}");
    assert!(
        kml.contains(&format!(
            "{:.7},{:.7} {:.7},{:.7} ",
            p.lon, p.lat, q.lon, q.lat
        )),
        "{kml}"
    );
    assert_eq!(kml.matches("<Point>").count(), 2, "{kml}");

    // An unknown format, and a download without a purpose: refused by name.
    let (status, _, _, body) = download(&server, "purpose=case-1&format=shp").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"field\":\"format\""), "{body}");
    let (status, _, _, body) = download(&server, "format=csv").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"field\":\"purpose\""), "{body}");

    // Each download is in the audit log, as the query it is, with its purpose and outcome.
    let (_, audit) = get(&server, "/api/v1/audit?tag=42", TOKEN).await;
    let tracks: Vec<(String, String)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "vehicle.track")
        .map(|e| {
            (
                e["purpose"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let answered = tracks
        .iter()
        .filter(|(p, o)| p == "case-1" && o == "answered")
        .count();
    assert_eq!(answered, 3, "{tracks:?}");
    assert!(
        tracks.iter().any(|(_, o)| o == "refused: invalid_field"),
        "{tracks:?}"
    );
}
