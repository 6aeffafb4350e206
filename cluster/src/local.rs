//! # A NATS server (or a three-node cluster) of one's own, for tests and benches
//!
//! Debian's `nats-server` with JetStream on free loopback ports, with data folders of its own
//! (temp dirs), killed when dropped: the cluster's tests and benches each start theirs rather
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
        let child = Command::new(&self.binary)
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
        listening(child, self.port).await
    }
}

/// Three `nats-server` nodes on loopback forming one JetStream cluster (replicated streams
/// survive the loss of one node).
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    binary: PathBuf,
    _dir: tempfile::TempDir,
}

#[derive(Debug)]
struct ClusterNode {
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts three nodes; `None`, having said why, when `nats-server` is not installed.
    pub async fn start() -> io::Result<Option<Self>> {
        let Some(binary) = binary() else {
            eprintln!(
                "SKIPPED: nats-server is not installed (apt-get install nats-server; .ci/run does)"
            );
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<io::Result<_>>()?;
        let mut nodes = Vec::new();
        for (i, &(port, route)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .filter(|&&(_, r)| r != route)
                .map(|(_, r)| format!("nats-route://127.0.0.1:{r}"))
                .collect();
            let data = dir.path().join(format!("n{i}"));
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: tagwatch-test, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    data.display(),
                    routes.join(", ")
                ),
            )?;
            nodes.push(ClusterNode {
                port,
                config,
                child: None,
            });
        }
        let mut cluster = Self {
            nodes,
            binary,
            _dir: dir,
        };
        for i in 0..3 {
            cluster.nodes[i].child = Some(cluster.spawn(i).await?);
        }
        Ok(Some(cluster))
    }

    /// Every node's URL, comma-separated (a client fails over between them).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills node `i` (SIGKILL); its data stays.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts node `i` again on its port and data.
    pub async fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill(i).await;
        self.nodes[i].child = Some(self.spawn(i).await?);
        Ok(())
    }

    async fn spawn(&self, i: usize) -> io::Result<Child> {
        let node = &self.nodes[i];
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        listening(child, node.port).await
    }
}

/// `child` once it accepts connections on `port`, or an error after 5 s.
async fn listening(mut child: Child, port: u16) -> io::Result<Child> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
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
        format!("nats-server did not listen on {port} within 5 s"),
    ))
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
