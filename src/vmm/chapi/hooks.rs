//! How the rest of the mock VMM plugs into the API server: [`ChApiHooks`] is told of every
//! [`Event`] (vsock up and down, pause, resume, VMM shutdown) before the request's reply is
//! written, and may fail the request; and of every request once it is answered (or held).
//!
//! Two ready-made implementations: [`NoHooks`] (does nothing) and [`ChannelHooks`], which sends
//! each event down an mpsc channel as a [`HookCall`] and waits for its acknowledgement, for a
//! caller that would rather consume events in its own task.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::state::Event;

/// What [`ChApiHooks::on_event`] returns: `Err(message)` fails the request with `message` in
/// its error chain.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One request as the server answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The method, e.g. `PUT`.
    pub method: String,
    /// The request target, e.g. `/api/v1/vm.boot`.
    pub path: String,
    /// The status written, or `None` when the request was held unanswered (the #816 wedge).
    pub status: Option<u16>,
    /// The client, e.g. `pid 4242 uid 1000`.
    pub peer: String,
    /// From the request's last byte to its reply (or to being held).
    pub elapsed: Duration,
}

impl RequestRecord {
    /// The record as one line: `PUT /api/v1/vm.boot → 204`.
    pub fn line(&self) -> String {
        match self.status {
            Some(status) => format!("{} {} → {status}", self.method, self.path),
            None => format!("{} {} → no reply (wedged)", self.method, self.path),
        }
    }

    /// The record as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "held": self.status.is_none(),
            "peer": self.peer,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1000.0,
        })
    }
}

/// The side effects of the API, for the caller to act on. Every method has a no-op default.
pub trait ChApiHooks: Send + Sync + 'static {
    /// An event, delivered before the reply of the request that caused it is written (within the
    /// server's hook deadline). `Err(message)` fails the request: a 500 whose error chain ends
    /// with `message` (e.g. a vsock socket that cannot be bound fails `vm.boot`), and the VM's
    /// state stays as it was.
    fn on_event(&self, event: &Event) -> HookFuture<'_> {
        let _ = event;
        Box::pin(std::future::ready(Ok(())))
    }

    /// A request was answered (or held).
    fn on_request(&self, record: &RequestRecord) {
        let _ = record;
    }
}

/// Hooks that do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl ChApiHooks for NoHooks {}

/// One event sent by [`ChannelHooks`], with the acknowledgement the server waits for.
#[derive(Debug)]
pub struct HookCall {
    /// The event.
    pub event: Event,
    ack: oneshot::Sender<Result<(), String>>,
}

impl HookCall {
    /// Answers the event: `Err(message)` fails the request. Dropping a `HookCall` without
    /// answering counts as `Ok`.
    pub fn ack(self, result: Result<(), String>) {
        let _ = self.ack.send(result);
    }
}

/// Hooks that send every event down a channel and wait for its [`HookCall::ack`]. If the
/// receiver is gone, events are accepted unheard.
#[derive(Debug, Clone)]
pub struct ChannelHooks {
    tx: mpsc::Sender<HookCall>,
}

impl ChannelHooks {
    /// Hooks and the receiver of their events (`capacity` events may wait unread).
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<HookCall>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }
}

impl ChApiHooks for ChannelHooks {
    fn on_event(&self, event: &Event) -> HookFuture<'_> {
        let event = event.clone();
        Box::pin(async move {
            let (ack, answer) = oneshot::channel();
            if self.tx.send(HookCall { event, ack }).await.is_err() {
                return Ok(());
            }
            answer.await.unwrap_or(Ok(()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_hooks_wait_for_the_answer() {
        let (hooks, mut rx) = ChannelHooks::new(1);
        let consumer = tokio::spawn(async move {
            let call = rx.recv().await.expect("an event");
            assert_eq!(call.event, Event::Paused);
            call.ack(Err("frozen solid".into()));
        });
        assert_eq!(
            hooks.on_event(&Event::Paused).await,
            Err("frozen solid".into())
        );
        consumer.await.expect("consumer");
        // With the receiver gone, events are accepted.
        assert_eq!(hooks.on_event(&Event::Resumed).await, Ok(()));
    }
}
