//! The guest role: the protocol-independent work of guestwire's mock guest agent (file
//! operations confined to a root directory, running commands), which each protocol's handlers
//! call with the fields of their requests.

pub mod config;
pub mod error;
pub mod exec;
pub mod fcexec;
pub mod files;
pub mod qga;
pub mod quantix;
pub mod serve;
pub mod volant;

pub use config::{GuestConfig, LoopMode};
pub use error::{ConnectionReport, GuestError};
pub use serve::{has_mock_agent, serve_connection};
