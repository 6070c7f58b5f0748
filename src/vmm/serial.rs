//! Placeholder, filled in by the serial adapter.
