//! The `guest-sync-delimited` tracker, pure (no IO, no clock).
//!
//! After connecting, and after any timeout, a qga client cannot know what is still in flight: a
//! reply to an abandoned request, half an object, the agent's stray-0xFF error. It sends
//! `guest-sync-delimited {"id": N}` (often preceded by a 0xFF to flush the agent's parser) and
//! discards everything until the 0xFF that qemu-ga writes before the reply and the
//! `{"return": N}` itself. [`SyncWaiter`] is that discarding, fed the decoded messages in order.
//!
//! A `return` with the right id but no 0xFF just before it is accepted too, flagged
//! (`delimited: false`): plain `guest-sync` replies carry no 0xFF, and some agents omit it.

use serde_json::Value;

use super::super::codec::Decoded;
use super::QgaMessage;

/// What to do with a message fed to a [`SyncWaiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStep {
    /// A stray message (or the sync's own 0xFF): drop it.
    Skip,
    /// This message was the sync reply: the stream is in step from the next message on.
    Synced {
        /// Whether a 0xFF came just before the reply, as `guest-sync-delimited` promises.
        delimited: bool,
    },
    /// Already synced: the message belongs to the caller.
    Pass,
}

/// Waits for the reply to `guest-sync-delimited {"id": id}`; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWaiter {
    id: i64,
    after_delimiter: bool,
    synced: Option<bool>,
    skipped: u64,
}

impl SyncWaiter {
    /// A tracker for the sync id `id`.
    pub fn new(id: i64) -> Self {
        Self {
            id,
            after_delimiter: false,
            synced: None,
            skipped: 0,
        }
    }

    /// The sync id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The command to send: `{"execute":"guest-sync-delimited","arguments":{"id":ID}}`.
    pub fn request(&self) -> QgaMessage {
        QgaMessage::sync_delimited(self.id)
    }

    /// Feeds the next decoded message.
    pub fn feed(&mut self, message: &QgaMessage) -> SyncStep {
        if self.synced.is_some() {
            return SyncStep::Pass;
        }
        match message {
            QgaMessage::Delimiter => {
                self.after_delimiter = true;
                SyncStep::Skip
            }
            QgaMessage::Return { value, .. } if self.is_our_id(value) => {
                let delimited = self.after_delimiter;
                self.synced = Some(delimited);
                SyncStep::Synced { delimited }
            }
            _ => {
                self.after_delimiter = false;
                self.skipped += 1;
                SyncStep::Skip
            }
        }
    }

    /// Feeds the next decoder output: errors are stray input (skipped, and they separate a
    /// preceding 0xFF from what follows).
    pub fn feed_decoded(&mut self, item: &Decoded<QgaMessage>) -> SyncStep {
        match item {
            Ok(frame) => self.feed(&frame.message),
            Err(_) if self.synced.is_some() => SyncStep::Pass,
            Err(_) => {
                self.after_delimiter = false;
                self.skipped += 1;
                SyncStep::Skip
            }
        }
    }

    /// Whether the sync reply has been seen.
    pub fn is_synced(&self) -> bool {
        self.synced.is_some()
    }

    /// Once synced, whether the reply came right after a 0xFF.
    pub fn delimited(&self) -> Option<bool> {
        self.synced
    }

    /// How many stray messages and errors were skipped (not counting 0xFF delimiters).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn is_our_id(&self, value: &Value) -> bool {
        value.as_i64() == Some(self.id)
    }
}
