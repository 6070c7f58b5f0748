//! Pure codecs, one file (or folder) per protocol: frame decoding and encoding with no IO and no
//! clock. Every decoder is incremental, bounded and reports bad input as a typed [`WireError`].

pub mod codec;
pub mod detect;
pub mod error;
pub mod fcexec;
pub mod frame;
pub mod hex;
pub mod http;
pub mod hybrid;
pub mod keep_raw;
pub mod protocol;
pub mod qga;
pub mod quantix;
pub mod raw;
pub mod sniff;
pub mod stream;

pub use codec::{
    Decoded, DecodedFrame, Decoder, Describe, Direction, Encoder, Frame, decode_all, decode_chunks,
};
pub use error::{EncodeError, WireError};
pub use hex::HexPreview;
