//! Pure protocol: message types and the frame codec. No sockets, no tokio.
//!
//! This module is public for tests and tools; its layout is not a stable API.

pub mod codec;
mod fast;
pub mod message;

pub use codec::{FrameError, decode_frame, encode_frame};
pub(crate) use fast::{chunk_parts, encode_chunk};
pub use message::*;
