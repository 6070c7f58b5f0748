//! The relay in front of a user's host client (`--host-cmd`): the client is a separate process,
//! so its traffic cannot be recorded inline; it dials this tap instead of the channel's socket,
//! and the tap relays byte for byte to the channel while recording into the scenario's capture.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::io::Endpoint;
use crate::tap::proxy::{TapConfig, TapEvent, TapSink, bind, run};
use crate::wire::hybrid::Flavour;

/// Connection numbers of the relay start here in the capture, apart from the inline tap's.
pub const CONN_OFFSET: u64 = 1_000_000;

/// Renumbers a sink's connections.
struct Offset(Arc<dyn TapSink>);

impl TapSink for Offset {
    fn on_event(&self, event: &TapEvent) {
        let mut e = event.clone();
        match &mut e {
            TapEvent::Connected { conn, .. }
            | TapEvent::UpstreamFailed { conn, .. }
            | TapEvent::Data { conn, .. }
            | TapEvent::Ended { conn, .. } => *conn += CONN_OFFSET,
        }
        self.0.on_event(&e);
    }
}

/// A running relay.
pub struct HostTap {
    /// What the host client dials instead of the channel's endpoint.
    pub endpoint: Endpoint,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl HostTap {
    /// Starts a relay at `listen` (a Unix socket path) to the channel's `upstream` socket,
    /// recording into `sink`. `host_endpoint` is the channel's endpoint, whose port (for
    /// `hvsock:`) the client keeps.
    pub async fn start(
        listen: std::path::PathBuf,
        upstream: std::path::PathBuf,
        host_endpoint: &Endpoint,
        sink: Arc<dyn TapSink>,
    ) -> Result<Self, String> {
        let config = TapConfig {
            listen: Endpoint::Unix(listen.clone()),
            upstream: Endpoint::Unix(upstream),
            flavour: Flavour::Firecracker,
            faults: Vec::new(),
            protocol: None,
            seed: 1,
            connect_deadline: Duration::from_secs(5),
            max_connections: None,
        };
        let listener = bind(&config).await.map_err(|e| e.to_string())?;
        let (tx, rx) = oneshot::channel();
        let sink: Arc<dyn TapSink> = Arc::new(Offset(sink));
        let task = tokio::spawn(async move {
            run(config, listener, sink, async {
                let _ = rx.await;
            })
            .await;
        });
        let endpoint = match host_endpoint {
            Endpoint::Hvsock { port, .. } => Endpoint::Hvsock {
                path: listen,
                port: *port,
            },
            _ => Endpoint::Unix(listen),
        };
        Ok(Self {
            endpoint,
            stop: Some(tx),
            task,
        })
    }

    /// Stops the relay (open connections are dropped).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}
