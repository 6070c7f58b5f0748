//! The `guestwire` command line.
