//! Placeholder, filled in by the hvsock adapter.
