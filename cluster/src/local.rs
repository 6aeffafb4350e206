//! # A NATS server of one's own, for tests and benches
//!
//! Debian's `nats-server` with JetStream on a free loopback port, with a data folder of its own
//! (a temp dir), killed when dropped: the cluster's tests and benches each start theirs rather
//! than share the machine's.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

#[derive(Debug)]
pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one; `None`, having said why, when `nats-server` is not installed (CI installs it).
    pub async fn start() -> io::Result<Option<Self>> {
        let Some(binary) = binary() else {
            eprintln!(
                "SKIPPED: nats-server is not installed (apt-get install nats-server; .ci/run does)"
            );
            return Ok(None);
        };
        let mut server = Self {
            port: free_port()?,
            dir: tempfile::tempdir()?,
            binary,
            child: None,
        };
        server.child = Some(server.spawn().await?);
        Ok(Some(server))
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): JetStream's data stays in its folder.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.kill().await;
        self.child = Some(self.spawn().await?);
        Ok(())
    }

    async fn spawn(&self) -> io::Result<Child> {
        let mut child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        // Up when it accepts connections (JetStream is ready by then on a fresh folder).
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("nats-server did not listen on {} within 5 s", self.port),
        ))
    }
}

/// A loopback TCP port free now.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}
