//! `terminal: true`: the runtime sends the pty master over `--console-socket` (SCM_RIGHTS)
//! during `create`; the harness reads the container's output from it. Line endings are an
//! observation of their own: with ONLCR set on the slave, "\n" arrives as "\r\n".

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::flows;
use crate::runtime::out_file;
use crate::scenario::{Ctx, Obs};

pub fn terminal(ctx: &Ctx) -> Obs {
    let sock = ctx.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let f = out_file(&ctx.dir.join("container-out"));
    let bundle = ctx.bundle.to_string_lossy();
    let sock_s = sock.to_string_lossy();
    let args = [
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        &sock_s,
        &ctx.id,
    ];
    let o = ctx.call(&args, &f);
    let mut obs = vec![("create.exit".to_string(), flows::exit_text(&o))];
    // The runtime connected (if at all) before `create` returned: accept without blocking.
    listener.set_nonblocking(true).unwrap();
    let master = listener.accept().ok().and_then(|(s, _)| recv_fd(&s));
    let Some(master) = master else {
        obs.push(("console".into(), "no pty master received\n".into()));
        return obs;
    };
    let scratch = out_file(&ctx.dir.join("start"));
    let o = ctx.call(&["start", &ctx.id], &scratch);
    obs.push(("start.exit".into(), flows::exit_text(&o)));
    let raw = read_to_eof(&master, Duration::from_secs(10));
    let onlcr = if raw.contains("\r\n") {
        "\\r\\n"
    } else {
        "\\n"
    };
    obs.push(("console.line-ending".into(), format!("{onlcr}\n")));
    obs.extend(flows::container(&raw.replace('\r', ""), ctx));
    obs.push(("wait".into(), flows::wait_for(ctx, "stopped")));
    obs
}

/// One message's first SCM_RIGHTS descriptor.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> Option<OwnedFd> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .ok()?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: descriptors received with SCM_RIGHTS are new and ours alone.
            fds.extend(v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    fds.into_iter().next()
}

/// Reads the master until the slave side is closed by everyone (EIO) or `limit` passes.
fn read_to_eof(master: &OwnedFd, limit: Duration) -> String {
    let mut out = Vec::new();
    let start = Instant::now();
    while start.elapsed() < limit {
        let mut pfd = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(200u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `run` in the foreground with `terminal: true` and no console socket: the runtime relays
/// its own terminal (a pty the harness made) to the container's. What arrives on the
/// harness's master shows the container pty's ONLCR, since the relay is raw.
pub fn terminal_run(ctx: &Ctx) -> Obs {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let bundle = ctx.bundle.to_string_lossy();
    let mut cmd = std::process::Command::new(ctx.rt.bin);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["run", "--bundle", &bundle, &ctx.id]);
    for stdio in 0..3 {
        let f = slave.try_clone().expect("dup pty slave");
        match stdio {
            0 => cmd.stdin(f),
            1 => cmd.stdout(f),
            _ => cmd.stderr(f),
        };
    }
    let Ok(mut child) = cmd.spawn() else {
        return vec![("run.exit".into(), "spawn failed\n".into())];
    };
    drop(slave);
    let start = Instant::now();
    let mut raw = String::new();
    let code = loop {
        raw.push_str(&read_to_eof(&pty.master, Duration::from_millis(300)));
        if let Ok(Some(st)) = child.try_wait() {
            raw.push_str(&read_to_eof(&pty.master, Duration::from_millis(300)));
            break st.code().unwrap_or(-1);
        }
        if start.elapsed() > crate::runtime::LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
    };
    let onlcr = if raw.contains("\r\n") {
        "\\r\\n"
    } else {
        "\\n"
    };
    let mut obs = vec![("run.exit".to_string(), format!("{code}\n"))];
    obs.push(("console.line-ending".into(), format!("{onlcr}\n")));
    obs.extend(flows::container(&raw.replace('\r', ""), ctx));
    obs
}
