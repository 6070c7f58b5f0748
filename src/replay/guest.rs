//! Replay as the guest (pure): answers each live host frame with the recorded replies of the
//! first not yet used recorded host frame of the same type, ids rewritten to the live ones
//! ([`rewrite_reply_ids`]), and yields the recorded unsolicited frames with their due times
//! since the connection's start (the adapter sleeps until each).
//!
//! A live frame of a type the recording has no unused host frame of is a
//! [`GuestOutcome::NoMatch`]: the adapter logs it and sends nothing (the client times out, as it
//! would with an agent that does not know the request); the connection stays open.

use std::time::Duration;

use bytes::Bytes;

use super::codec::{encode, rewrite_reply_ids};
use super::error::ReplayError;
use super::session::Session;
use crate::wire::DecodedFrame;

/// A recorded unsolicited frame to send at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// When, since the connection's start.
    pub at: Duration,
    /// Its type.
    pub type_name: String,
    /// Its bytes.
    pub bytes: Bytes,
}

/// What to do about a live host frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestOutcome {
    /// Send these frames (the recorded replies, possibly none).
    Reply {
        /// Which recorded step (0-based) answered.
        step: usize,
        /// The frames' types and bytes, in order.
        frames: Vec<(String, Bytes)>,
    },
    /// The recording has no unused host frame of this type.
    NoMatch {
        /// The live frame's type.
        type_name: String,
    },
}

/// One connection served as the recorded guest.
#[derive(Debug, Clone)]
pub struct ReplayGuest {
    session: std::sync::Arc<Session>,
    used: Vec<bool>,
}

impl ReplayGuest {
    /// A fresh replay of `session` for one live connection.
    pub fn new(session: std::sync::Arc<Session>) -> Self {
        let used = vec![false; session.steps.len()];
        Self { session, used }
    }

    /// The recorded unsolicited frames, encoded, in order of their due times.
    pub fn unsolicited(&self) -> Result<Vec<Scheduled>, ReplayError> {
        let s = &self.session;
        s.unsolicited
            .iter()
            .map(|&i| {
                let f = &s.frames[i];
                Ok(Scheduled {
                    at: f.at,
                    type_name: f.type_name.clone(),
                    bytes: encode(&s.protocol, &f.type_name, &f.message)?,
                })
            })
            .collect()
    }

    /// The replies to a live host frame.
    pub fn on_request(&mut self, live: &DecodedFrame) -> Result<GuestOutcome, ReplayError> {
        let s = &self.session;
        let found = s.steps.iter().enumerate().position(|(k, step)| {
            !self.used[k] && s.frames[step.request].type_name == live.type_name
        });
        let Some(k) = found else {
            return Ok(GuestOutcome::NoMatch {
                type_name: live.type_name.clone(),
            });
        };
        self.used[k] = true;
        let mut frames = Vec::new();
        for &r in &s.steps[k].replies {
            let f = &s.frames[r];
            let mut msg = f.message.clone();
            rewrite_reply_ids(&s.protocol, &mut msg, &live.message);
            frames.push((
                f.type_name.clone(),
                encode(&s.protocol, &f.type_name, &msg)?,
            ));
        }
        Ok(GuestOutcome::Reply { step: k, frames })
    }
}
