//! `guestwire-tui`: a terminal UI over guestwire's captures, taps and socket inspection.
//!
//! - [`store`]: the one state store (bounded frame ring, stats, selection, filter, pause, view).
//! - [`sources`]: where events come from, behind the [`sources::Source`] trait.
//! - [`views`]: drawing the store, nothing else.
//! - [`faults`]: the fault menu of the Faults view (live toggles of a mock VMM's faults).
//! - [`keys`]: pure key → action mapping.
//! - [`pairing`]: request → reply pairing for the latency column.
//! - [`view`]: the views and playback speeds.
//! - [`rates`]: per-second counts and the moving window of the Stats view.
//! - [`app`]: the terminal loop that ties them together.

#![warn(missing_docs)]

pub mod app;
pub mod faults;
pub mod keys;
pub mod pairing;
pub mod rates;
pub mod sources;
pub mod store;
pub mod view;
pub mod views;
