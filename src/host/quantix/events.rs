//! The quantix client's event queue: the unsolicited messages the agent sends (telemetry,
//! agent_ready, error, clipboard_changed). Bounded: when nobody reads, the oldest event is
//! dropped and counted, so a client nobody drains never grows without limit (the agent sends
//! telemetry every 5 s for as long as the connection lives).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::wire::quantix::AgentMessage;

/// How many events the queue holds before dropping the oldest.
pub const DEFAULT_EVENT_CAPACITY: usize = 256;

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<AgentMessage>,
    dropped: u64,
    received: u64,
    closed: bool,
}

/// The queue shared by the client's reader task and the receivers.
#[derive(Debug)]
pub(crate) struct EventQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl EventQueue {
    /// An empty queue holding at most `capacity` events (at least 1).
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Appends an event, dropping the oldest when full.
    pub(crate) fn push(&self, event: AgentMessage) {
        self.with(|s| {
            s.received += 1;
            if s.queue.len() >= self.capacity {
                s.queue.pop_front();
                s.dropped += 1;
            }
            s.queue.push_back(event);
        });
        self.notify.notify_one();
    }

    /// No more events will come (the connection ended); receivers drain what is left.
    pub(crate) fn close(&self) {
        self.with(|s| s.closed = true);
        self.notify.notify_one();
    }
}

/// Receives the client's events. Clones share one queue: each event goes to one of them.
#[derive(Debug, Clone)]
pub struct EventReceiver {
    queue: Arc<EventQueue>,
}

impl EventReceiver {
    pub(crate) fn new(queue: Arc<EventQueue>) -> Self {
        Self { queue }
    }

    /// The next event; `None` once the connection has ended and the queue is empty.
    pub async fn recv(&self) -> Option<AgentMessage> {
        loop {
            let (event, closed) = self.queue.with(|s| (s.queue.pop_front(), s.closed));
            if let Some(event) = event {
                // Pass a wake-up on to another receiver if more events are waiting.
                if self.queue.with(|s| !s.queue.is_empty()) {
                    self.queue.notify.notify_one();
                }
                return Some(event);
            }
            if closed {
                self.queue.notify.notify_one();
                return None;
            }
            self.queue.notify.notified().await;
        }
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<AgentMessage> {
        self.queue.with(|s| s.queue.pop_front())
    }

    /// Every event queued now.
    pub fn drain(&self) -> Vec<AgentMessage> {
        self.queue.with(|s| s.queue.drain(..).collect())
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.with(|s| s.dropped)
    }

    /// Events received since the connection started (including dropped ones).
    pub fn received(&self) -> u64 {
        self.queue.with(|s| s.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::quantix::TelemetryReport;

    fn tel(n: u64) -> AgentMessage {
        AgentMessage::new(
            "",
            TelemetryReport {
                uptime_seconds: n,
                ..Default::default()
            },
        )
    }

    #[tokio::test]
    async fn drops_the_oldest_when_full_and_ends_after_close() {
        let q = EventQueue::new(2);
        let rx = EventReceiver::new(q.clone());
        for n in 0..5 {
            q.push(tel(n));
        }
        assert_eq!(rx.dropped(), 3);
        assert_eq!(rx.received(), 5);
        assert_eq!(rx.recv().await, Some(tel(3)));
        q.close();
        assert_eq!(rx.recv().await, Some(tel(4)));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken() {
        let q = EventQueue::new(4);
        let rx = EventReceiver::new(q.clone());
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        q.push(tel(1));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("join");
        assert_eq!(got, Some(tel(1)));
    }
}
