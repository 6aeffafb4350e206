//! # Stop requests: Ctrl-C (SIGINT) and SIGTERM, the signal systemd, docker and Kubernetes send.
//!
//! Either one starts the server's orderly shutdown (the last flush and a checkpoint), so that a
//! service manager's stop loses nothing and leaves no journal for the next start to apply.

/// Waits for SIGINT or SIGTERM; returns the name of the one that came.
pub async fn stop_requested() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = terminate.recv() => Ok("SIGTERM"),
            _ = interrupt.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("Ctrl-C")
    }
}
