//! The parent ↔ init-stub protocol over a SOCK_SEQPACKET socketpair: one JSON message per
//! packet, so message boundaries come from the kernel.
//!
//! parent                         init stub
//!   clone ───────────────────────► (waits)
//!   id maps, cgroup, affinity
//!   Go{host_pid} ────────────────►
//!                                  namespaces, mounts
//!   ◄──────────────────────────── Hooks        (prestart + createRuntime run by parent)
//!   HooksDone ───────────────────►
//!                                  createContainer hooks, pivot, process setup
//!   ◄──────────────────────────── Ready        (then blocks on the exec FIFO)
//! Any failure in the stub is sent as Error{msg} and the stub exits.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// From the first child when the init had to be forked again (namespaces::spawn_init).
    Forked {
        pid: i32,
    },
    Go {
        host_pid: i32,
    },
    Hooks,
    HooksDone,
    Ready,
    Error {
        msg: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync socket: {0}")]
    Sys(#[from] nix::Error),
    #[error("sync socket: malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("sync socket: expected {expected}, got {got:?}")]
    Unexpected { expected: &'static str, got: Msg },
    #[error("init process exited before reporting {0}")]
    Eof(&'static str),
}

pub struct Channel(pub OwnedFd);

impl Channel {
    pub fn pair() -> Result<(Channel, Channel), SyncError> {
        let (a, b) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let data = serde_json::to_vec(msg)?;
        socket::send(self.0.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Next message, or None when the peer closed its end.
    pub fn recv(&self) -> Result<Option<Msg>, SyncError> {
        let mut buf = [0u8; 8192];
        let n = loop {
            match socket::recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&buf[..n])?))
    }

    /// Waits for one specific message; an Error from the peer becomes Err.
    pub fn expect(&self, expected: &'static str) -> Result<Msg, ExpectError> {
        match self.recv()? {
            None => Err(SyncError::Eof(expected).into()),
            Some(Msg::Error { msg }) => Err(ExpectError::Peer(msg)),
            Some(m) => Ok(m),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The peer reported a failure; the message is already one complete line.
    #[error("{0}")]
    Peer(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&Msg::Go { host_pid: 42 }).unwrap();
        a.send(&Msg::Error {
            msg: "mount /proc: EPERM".into(),
        })
        .unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Go { host_pid: 42 }));
        match b.expect("Ready") {
            Err(ExpectError::Peer(m)) => assert_eq!(m, "mount /proc: EPERM"),
            other => panic!("{other:?}"),
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
