//! Placeholder, filled in by the chapi adapter.
