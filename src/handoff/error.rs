use std::fmt;

use crate::end::Rejection;

/// Why a handoff was rejected. Each one closes every fd it brought; the client (when one came)
/// still gets the HTTP status of [`HandoffError::client_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffError {
    /// More data than `server.max_handoff_bytes` (stream) or a truncated message (seqpacket).
    TooLarge { limit: usize },
    /// The kernel had to drop control data: more fds than we had room for.
    ControlTruncated,
    /// The message carried no file descriptor.
    NoFd,
    /// The fd is not a stream socket (a pipe, a file, a UDP socket...).
    BadFd { reason: String },
    /// The payload is not a JSON object of the expected shape.
    BadJson { reason: String },
    /// Apache neither finished nor closed within the handoff timeout.
    TimedOut,
    /// recvmsg failed; `reset` when Apache reset or broke the connection.
    Receive { reason: String, reset: bool },
}

impl fmt::Display for HandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoffError::TooLarge { limit } => write!(
                f,
                "handoff data exceeds {limit} bytes; send less in X-Handoff-Data or raise server.max_handoff_bytes"
            ),
            HandoffError::ControlTruncated => {
                write!(f, "handoff control data was truncated (too many fds in one message)")
            }
            HandoffError::NoFd => write!(f, "handoff carried no client file descriptor"),
            HandoffError::BadFd { reason } => {
                write!(f, "handed-off fd is not a stream socket: {reason}")
            }
            HandoffError::BadJson { reason } => write!(f, "handoff data is not valid: {reason}"),
            HandoffError::TimedOut => write!(
                f,
                "the handoff did not complete within the handoff timeout (Apache neither finished nor closed)"
            ),
            HandoffError::Receive { reason, .. } => {
                write!(f, "receiving the handoff failed: {reason}")
            }
        }
    }
}

impl std::error::Error for HandoffError {}

impl HandoffError {
    /// The reason counted and logged for this rejection.
    pub fn rejection(&self) -> Rejection {
        match self {
            HandoffError::TooLarge { .. } => Rejection::TooLarge,
            HandoffError::ControlTruncated => Rejection::Ctrunc,
            HandoffError::NoFd => Rejection::NoFd,
            HandoffError::BadFd { .. } => Rejection::BadFd,
            HandoffError::BadJson { .. } => Rejection::BadJson,
            HandoffError::TimedOut => Rejection::Timeout,
            HandoffError::Receive { reset, .. } => Rejection::Network { reset: *reset },
        }
    }

    /// The answer a client gets when its fd arrived but the handoff was still rejected.
    pub fn client_status(&self) -> crate::http::ErrorStatus {
        use crate::http::ErrorStatus;
        match self {
            HandoffError::TooLarge { .. } => ErrorStatus::PayloadTooLarge,
            HandoffError::BadJson { .. } => ErrorStatus::BadRequest,
            _ => ErrorStatus::InternalServerError,
        }
    }

    /// What the client is told, in words it can act on and without internal detail.
    pub fn client_message(&self) -> String {
        match self {
            HandoffError::TooLarge { limit } => {
                format!("request data too large (limit {limit} bytes)")
            }
            HandoffError::BadJson { reason } => format!("invalid request data: {reason}"),
            _ => "the request could not be handed to the streaming service; retry".to_string(),
        }
    }
}
