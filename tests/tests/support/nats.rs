//! A NATS server with JetStream of the test's own: Debian's `nats-server` on a loopback port the
//! test picks, with a data folder of its own, killed when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one, or says why the test is skipped and returns `None` (no `nats-server`; CI
    /// installs it).
    pub async fn start() -> Option<Self> {
        let Some(binary) = binary() else {
            eprintln!(
                "SKIPPED: nats-server is not installed (apt-get install nats-server; .ci/run does)"
            );
            return None;
        };
        let mut server = Self {
            port: super::free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.child = Some(server.spawn(&binary).await);
        Some(server)
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
    pub async fn restart(&mut self) {
        self.kill().await;
        let binary = binary().expect("was there at start");
        self.child = Some(self.spawn(&binary).await);
    }

    async fn spawn(&self, binary: &PathBuf) -> Child {
        let child = Command::new(binary)
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
            .spawn()
            .expect("nats-server starts");
        // Up when it accepts connections (JetStream is ready by then on a fresh folder).
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not listen on {} within 5 s", self.port);
    }
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}
