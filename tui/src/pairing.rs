//! Request → reply pairing for the frame list's latency column, as [`Summary`] pairs them: by
//! correlation id per connection, in order for frames without one. Bounded: at most
//! [`MAX_WAITING`] requests are remembered (beyond it the oldest are forgotten).
//!
//! [`Summary`]: guestwire::capture::Summary

use std::collections::{HashMap, VecDeque};

use guestwire::capture::ConnId;
use guestwire::capture::summary::NOT_PAIRED;
use guestwire::wire::Direction;

/// The most requests remembered while waiting for their reply (beyond it the oldest are forgotten).
pub const MAX_WAITING: usize = 10_000;

/// Requests waiting for their reply.
#[derive(Debug, Default)]
pub struct Pairing {
    waiting: HashMap<(ConnId, String), u64>,
    waiting_order: VecDeque<(ConnId, String)>,
    in_order: HashMap<ConnId, VecDeque<u64>>,
}

impl Pairing {
    /// Files a request, or returns a reply's latency: by correlation id, or in order for frames
    /// without one (as [`Summary`] pairs them).
    pub fn pair(
        &mut self,
        conn: ConnId,
        direction: Direction,
        type_name: &str,
        id: &Option<String>,
        time_ns: u64,
    ) -> Option<u64> {
        let Some(id) = id.as_ref() else {
            if NOT_PAIRED.contains(&type_name) {
                return None;
            }
            let queue = self.in_order.entry(conn).or_default();
            return match direction {
                Direction::ToGuest => {
                    if queue.len() >= MAX_WAITING {
                        queue.pop_front();
                    }
                    queue.push_back(time_ns);
                    None
                }
                Direction::ToHost => queue.pop_front().map(|t| time_ns.saturating_sub(t)),
            };
        };
        let key = (conn, id.clone());
        match direction {
            Direction::ToGuest => {
                if self.waiting.len() >= MAX_WAITING
                    && let Some(old) = self.waiting_order.pop_front()
                {
                    self.waiting.remove(&old);
                }
                if self.waiting.insert(key.clone(), time_ns).is_none() {
                    self.waiting_order.push_back(key);
                }
                None
            }
            Direction::ToHost => self.waiting.remove(&key).map(|t| time_ns.saturating_sub(t)),
        }
    }
}
