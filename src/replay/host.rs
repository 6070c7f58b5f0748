//! Replay as the host (pure): the recorded host frames to send in order, and the live guest
//! frames matched against the recorded ones.
//!
//! A host frame is sent once every guest frame recorded before it has a live counterpart (the
//! replies to the earlier host frames, and the unsolicited frames such as quantix `agent_ready`
//! that came before it), or once the adapter's deadline for that wait passes
//! ([`ReplayHost::give_up_waiting`]). Recorded host frames are sent as recorded (ids included).
//!
//! Matching live guest frames: with ids, a live frame whose id is that of a sent host frame
//! answers it, anything else is unsolicited; without ids, a live frame answers the latest sent
//! host frame when that step recorded a reply of its type. Unsolicited frames are compared by
//! type, in order; more live unsolicited frames of a recorded type than recorded (periodic
//! telemetry) are not differences, unrecorded types are.

use std::collections::HashMap;

use bytes::Bytes;

use super::codec::encode;
use super::diff::{DiffEntry, DiffOptions, Report, compare_frame};
use super::error::ReplayError;
use super::session::Session;
use crate::wire::DecodedFrame;

/// What the adapter does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// Send this recorded host frame.
    Send {
        /// Which step (0-based).
        step: usize,
        /// Its type.
        type_name: String,
        /// Its bytes.
        bytes: Bytes,
    },
    /// Wait for live guest frames (with a deadline, then [`ReplayHost::give_up_waiting`]).
    Wait,
    /// Everything was sent and every recorded guest frame has a live counterpart (or the last
    /// wait gave up).
    Done,
}

/// A host replay of one connection.
#[derive(Debug)]
pub struct ReplayHost {
    session: Session,
    opts: DiffOptions,
    /// Steps sent so far.
    sent: usize,
    /// Live replies per step.
    replies: Vec<Vec<DecodedFrame>>,
    /// Live unsolicited frames.
    unsolicited: Vec<DecodedFrame>,
    /// Live ids of sent steps.
    ids: HashMap<String, usize>,
    /// The wait before step `sent` (or the end) was given up.
    gave_up: bool,
}

impl ReplayHost {
    /// A replay of `session`, compared with `opts`.
    pub fn new(session: Session, opts: DiffOptions) -> Self {
        let replies = vec![Vec::new(); session.steps.len()];
        Self {
            session,
            opts,
            sent: 0,
            replies,
            unsolicited: Vec::new(),
            ids: HashMap::new(),
            gave_up: false,
        }
    }

    /// The session being replayed.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether every guest frame recorded before frame index `before` has a live counterpart.
    fn caught_up(&self, before: usize) -> bool {
        let s = &self.session;
        let mut unsolicited_by_type: HashMap<&str, usize> = HashMap::new();
        for &u in s.unsolicited.iter().filter(|&&u| u < before) {
            *unsolicited_by_type
                .entry(&s.frames[u].type_name)
                .or_default() += 1;
        }
        let unsolicited_ok = unsolicited_by_type.iter().all(|(t, n)| {
            self.unsolicited
                .iter()
                .filter(|f| f.type_name == *t)
                .count()
                >= *n
        });
        let replies_ok = s.steps.iter().enumerate().all(|(k, step)| {
            let recorded = step.replies.iter().filter(|&&r| r < before).count();
            self.replies[k].len() >= recorded
        });
        unsolicited_ok && replies_ok
    }

    /// The next thing to do.
    pub fn next_action(&mut self) -> Result<HostAction, ReplayError> {
        let s = &self.session;
        let before = s
            .steps
            .get(self.sent)
            .map_or(s.frames.len(), |st| st.request);
        if !self.gave_up && !self.caught_up(before) {
            return Ok(HostAction::Wait);
        }
        let Some(step) = s.steps.get(self.sent) else {
            return Ok(HostAction::Done);
        };
        let f = &s.frames[step.request];
        let bytes = encode(&s.protocol, &f.type_name, &f.message)?;
        if let Some(id) = &f.correlation_id {
            self.ids.insert(id.clone(), self.sent);
        }
        self.sent += 1;
        self.gave_up = false;
        Ok(HostAction::Send {
            step: self.sent - 1,
            type_name: f.type_name.clone(),
            bytes,
        })
    }

    /// The deadline of the current wait passed: go on without the missing frames.
    pub fn give_up_waiting(&mut self) {
        self.gave_up = true;
    }

    /// A live guest frame arrived.
    pub fn on_live(&mut self, frame: DecodedFrame) {
        let s = &self.session;
        let step = if s.uses_ids {
            frame
                .correlation_id
                .as_ref()
                .and_then(|id| self.ids.get(id).copied())
        } else {
            self.sent.checked_sub(1).filter(|&k| {
                s.steps[k]
                    .replies
                    .iter()
                    .any(|&r| s.frames[r].type_name == frame.type_name)
            })
        };
        match step {
            Some(k) => self.replies[k].push(frame),
            None => self.unsolicited.push(frame),
        }
    }

    /// The comparison of everything received with the recording.
    pub fn report(&self) -> Report {
        let s = &self.session;
        let mut diffs: Vec<(usize, DiffEntry)> = Vec::new();
        let mut compared = 0;
        let cmp = |r: usize, live: &DecodedFrame, out: &mut Vec<(usize, DiffEntry)>| {
            let f = &s.frames[r];
            let mut d = Vec::new();
            compare_frame(
                &self.opts,
                s.guest_number(r),
                &f.type_name,
                &f.message,
                f.len,
                &live.type_name,
                &live.message,
                live.len,
                &mut d,
            );
            out.extend(d.into_iter().map(|e| (r, e)));
        };
        for (k, step) in s.steps.iter().enumerate() {
            let live = &self.replies[k];
            for (i, &r) in step.replies.iter().enumerate() {
                match live.get(i) {
                    Some(l) => {
                        compared += 1;
                        cmp(r, l, &mut diffs);
                    }
                    None => diffs.push((
                        r,
                        DiffEntry::Missing {
                            n: s.guest_number(r),
                            type_name: s.frames[r].type_name.clone(),
                        },
                    )),
                }
            }
            for l in live.iter().skip(step.replies.len()) {
                diffs.push((
                    step.request,
                    DiffEntry::Extra {
                        type_name: l.type_name.clone(),
                        after: Some(s.frames[step.request].type_name.clone()),
                    },
                ));
            }
        }
        let mut taken: HashMap<&str, usize> = HashMap::new();
        for &u in &s.unsolicited {
            let t = s.frames[u].type_name.as_str();
            let nth = taken.entry(t).or_default();
            match self
                .unsolicited
                .iter()
                .filter(|f| f.type_name == t)
                .nth(*nth)
            {
                Some(l) => {
                    compared += 1;
                    cmp(u, l, &mut diffs);
                }
                None => diffs.push((
                    u,
                    DiffEntry::Missing {
                        n: s.guest_number(u),
                        type_name: t.to_string(),
                    },
                )),
            }
            *nth += 1;
        }
        for l in &self.unsolicited {
            let recorded = s
                .unsolicited
                .iter()
                .any(|&u| s.frames[u].type_name == l.type_name);
            if !recorded {
                diffs.push((
                    usize::MAX,
                    DiffEntry::Extra {
                        type_name: l.type_name.clone(),
                        after: None,
                    },
                ));
            }
        }
        diffs.sort_by_key(|(r, _)| *r);
        Report {
            sent: self.sent,
            compared,
            diffs: diffs.into_iter().map(|(_, e)| e).collect(),
        }
    }
}
