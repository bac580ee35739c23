//! The private control channel between a front end (the `fever replay` UI, `fever ps`, `fever attach`)
//! and a program running under fever: a Unix socket in a 0700 directory carrying framed,
//! versioned, size-capped messages.
//!
//! - `frame.rs`: the framing: a little-endian `u32` length, then the payload (version byte, tag
//!   byte, body); [`read_frame`]/[`write_frame`] over any reader/writer, [`split_frames`] out of
//!   a buffer of received bytes, [`MAX_MESSAGE`] bytes at most.
//! - `wire.rs`: the body's primitive encoding (fixed-width integers, length-prefixed bytes).
//! - `message.rs`: what is said: [`Request`]s from the front end, [`Response`]s from the program.
//! - `dir.rs`: the private per-user directory the sockets live in, and each process's socket.
//! - `family.rs`: the family channel: a program's child processes receive its saves.
//!
//! Decoding never panics: any byte string is either a message or a [`ControlError`] the
//! receiver answers with [`Response::Error`] (the connection survives when the frame's length was
//! sane; an oversized length closes it, since the stream can no longer be trusted).

mod dir;
mod family;
mod frame;
mod message;
mod wire;

pub use dir::{
    control_dir, has_ended, is_alive, parent_pid, peer_is_this_user, private_dir, process_region,
    process_socket, processes,
};
pub use family::{ChildMessage, ParentMessage, Prepared};
pub use frame::{read_frame, split_frames, write_frame, MAX_MESSAGE, PROTOCOL_VERSION};
pub use message::{
    ArgNote, EndOutcome, FunctionCode, ProcessStatus, ReplayRequest, ReplayResult, Request,
    Response,
};

/// Why a message could not be read or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The peer closed the connection (cleanly, between messages).
    #[error("the connection was closed")]
    Closed,
    /// A frame announced more than [`MAX_MESSAGE`] bytes.
    #[error("message of {0} bytes is over the limit of {MAX_MESSAGE} bytes")]
    TooLarge(u64),
    /// The payload speaks another protocol version.
    #[error(
        "protocol version {0} is not supported (this fever speaks version {PROTOCOL_VERSION})"
    )]
    Version(u8),
    /// The payload is not a well-formed message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Reading or writing the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ControlError {
    /// After this error the stream's framing cannot be trusted any more: close the connection.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Closed | Self::TooLarge(_) | Self::Io(_))
    }
}
