//! The gateway's frames per second against the machine's own loopback UDP capacity for the same
//! datagram size (`iperf3`, Debian's package, installed here when missing).
//!
//! The gateway is fed frames it has already applied: each is received, its MAC verified, decoded,
//! found a duplicate and answered, without the tracker or the store, so what is measured is the
//! gateway itself.

use crate::metrics::Scrape;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const BLAST: Duration = Duration::from_secs(3);

/// Sends `datagrams` round-robin as fast as one socket can for [`BLAST`]; returns the gateway's
/// received frames per second, by its own counter.
pub async fn gateway_rate(
    client: &reqwest::Client,
    api: &str,
    udp: SocketAddr,
    datagrams: &[bytes::BytesMut],
) -> anyhow::Result<f64> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(udp).await?;
    let before = Scrape::take(client, api).await?;
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < BLAST {
        for _ in 0..256 {
            // A full kernel buffer drops the datagram, as a real network would.
            let _ = socket.send(&datagrams[i % datagrams.len()]).await;
            i += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = Scrape::take(client, api).await?;
    Ok(after.delta(
        &before,
        "tagwatch_frames_received_total{kind=\"detections\"}",
    ) / secs)
}

/// Loopback UDP datagrams per second of `size` bytes as iperf3 measures them (received).
pub fn iperf3_rate(size: usize) -> anyhow::Result<f64> {
    if std::process::Command::new("iperf3")
        .arg("--version")
        .output()
        .is_err()
    {
        let installed = std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "iperf3"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        anyhow::ensure!(
            installed.is_ok_and(|s| s.success()),
            "iperf3 is missing and could not be installed (apt-get install iperf3)"
        );
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut server = std::process::Command::new("iperf3")
        .args(["-s", "-1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let output = std::process::Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &port.to_string(), "-u", "-b", "0"])
        .args([
            "-l",
            &size.to_string(),
            "-t",
            &BLAST.as_secs().to_string(),
            "-J",
        ])
        .output()?;
    let _ = server.wait();
    let report: Value = serde_json::from_slice(&output.stdout)?;
    let sum = &report["end"]["sum"];
    let packets = sum["packets"].as_f64().unwrap_or(0.0);
    let lost = sum["lost_packets"].as_f64().unwrap_or(0.0);
    let seconds = sum["seconds"].as_f64().unwrap_or(1.0).max(0.001);
    Ok((packets - lost) / seconds)
}

/// Waits (at most a minute) until the server has committed every frame it took in, so a store
/// still catching up with the last step does not share the CPU with the measurement.
async fn quiesce(client: &reqwest::Client, api: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let health: Value = client
            .get(format!("{api}/healthz"))
            .send()
            .await?
            .json()
            .await?;
        if health["frames_in_flight"] == 0 && health["queue_depth"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last flush's ACKs and the kernel's buffers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// Both, for datagrams of the run's own frames.
pub async fn compare(
    client: &reqwest::Client,
    api: &str,
    udp: SocketAddr,
    datagrams: &[bytes::BytesMut],
) -> anyhow::Result<Value> {
    let size = datagrams.iter().map(|d| d.len()).sum::<usize>() / datagrams.len().max(1);
    quiesce(client, api).await?;
    let gateway = gateway_rate(client, api, udp, datagrams).await?;
    let iperf = tokio::task::spawn_blocking(move || iperf3_rate(size)).await??;
    eprintln!(
        "  gateway {gateway:.0} frames/s vs loopback UDP (iperf3) {iperf:.0} datagrams/s of {size} bytes: {:.2}",
        gateway / iperf.max(1.0)
    );
    Ok(json!({
        "datagram_bytes": size,
        "gateway_frames_per_s": gateway,
        "iperf3_datagrams_per_s": iperf,
        "ratio": gateway / iperf.max(1.0),
    }))
}
