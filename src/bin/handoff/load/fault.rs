//! The client behaviours the load generator can mix (`-faults`), and what each should see.
//!
//! | kind        | the client                                                         | the daemon should end it as          |
//! |-------------|--------------------------------------------------------------------|--------------------------------------|
//! | `read`      | reads everything                                                   | `completed`                          |
//! | `close`     | reads `-fault-bytes`, then closes once nothing is left unread (FIN) | `client_disconnected`                |
//! | `reset`     | reads exactly `-fault-bytes`, then closes with bytes unread (RST)   | `client_disconnected`                |
//! | `noread`    | never reads                                                        | `write_timeout`                      |
//! | `halfclose` | shuts its sending side right after the handoff, then reads all     | `completed`                          |
//! | `badjson`   | is handed off with data that is not JSON, reads the answer (400)   | rejection `bad_json`                 |
//! | `nofd`      | is no client: the handoff carries the data but no fd               | rejection `no_fd`                    |
//!
//! A `close` or `reset` whose stream ended (`[DONE]` or the daemon's close) before the client
//! got to close it is counted as *late*: the daemon completed it, which is no failure.
//!
//! Transports: `reset` always uses loopback TCP, where closing with bytes unread sends RST
//! (RFC 2525 2.17; std has no stable `SO_LINGER`, and the syscall layer offers none). `noread`
//! always uses an `AF_UNIX` pair whose daemon end has the smallest send buffer, so that the
//! daemon's writes block after a few KiB: a loopback TCP receive queue would take 64 KiB or
//! more of an unread stream, more than a whole mock answer. The others follow `-socketpair`.

/// Handoff data for `badjson`: cut short, so no JSON parser accepts it.
pub const BAD_JSON: &[u8] = b"{\"prompt\":";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Read,
    Close,
    Reset,
    NoRead,
    HalfClose,
    BadJson,
    NoFd,
}

/// The kinds' names, in the order of [`Fault::ALL`]: `-faults` takes these.
pub const NAMES: &[&str] = &[
    "read",
    "close",
    "reset",
    "noread",
    "halfclose",
    "badjson",
    "nofd",
];

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Read,
        Fault::Close,
        Fault::Reset,
        Fault::NoRead,
        Fault::HalfClose,
        Fault::BadJson,
        Fault::NoFd,
    ];

    /// From an index into [`NAMES`]; anything else is `Read`.
    pub fn from_index(index: usize) -> Fault {
        Fault::ALL.get(index).copied().unwrap_or(Fault::Read)
    }

    pub fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        NAMES[self.index()]
    }

    /// The status the client should get: 400 for data that is not JSON, else a stream.
    pub fn expected_status(self) -> u16 {
        match self {
            Fault::BadJson => 400,
            _ => 200,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_line_up() {
        assert_eq!(NAMES.len(), Fault::ALL.len());
        for (i, fault) in Fault::ALL.into_iter().enumerate() {
            assert_eq!(Fault::from_index(i), fault);
            assert_eq!(fault.index(), i);
            assert_eq!(fault.name(), NAMES[i]);
        }
        assert_eq!(Fault::from_index(99), Fault::Read);
    }

    #[test]
    fn the_bad_data_is_not_json() {
        assert!(serde_json::from_slice::<serde_json::Value>(BAD_JSON).is_err());
    }
}
