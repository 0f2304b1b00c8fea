//! The lifecycle every fake shares: listen on an ephemeral port of 127.0.0.1, serve an
//! axum router on a background task, stop when the handle is dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running loopback server; dropping it stops the server.
pub(crate) struct LoopbackServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LoopbackServer {
    /// Bind first: fakes that put their own URL in responses need the address before they
    /// build their router.
    pub(crate) async fn bind() -> std::io::Result<(TcpListener, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok((listener, addr))
    }

    /// Serve `app` on `listener` until dropped; `name` labels the error log.
    pub(crate) fn serve(listener: TcpListener, app: Router, name: &'static str) -> Self {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, fake = name, "fake server stopped");
            }
        });
        Self { addr, task }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
