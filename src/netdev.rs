//! `linux.netDevices`: moving host interfaces into the container's network namespace.
//!
//! The parent does this while the init waits after setting up its namespaces: the kernel
//! renames an interface as it moves it (RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME),
//! and keeps its MTU and MAC, but drops its addresses and brings it down. So the addresses
//! and the up flag are read first and put back inside the namespace afterwards.
//!
//! The few rtnetlink messages this needs are written by hand: a header, a fixed struct
//! and a list of (length, type, value) attributes each.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sched::CloneFlags;

use crate::spec::NetDevicePlan;

#[derive(Debug, thiserror::Error)]
#[error("{field}: {msg}")]
pub struct NetdevError {
    /// The config field: `linux.netDevices.<host name>`, or `linux.netDevices`.
    field: String,
    msg: String,
}

fn err(field: &str, msg: impl Into<String>) -> NetdevError {
    NetdevError {
        field: field.to_string(),
        msg: msg.into(),
    }
}

fn os_err(field: &str, step: &str) -> impl FnOnce(std::io::Error) -> NetdevError {
    move |e| err(field, format!("{step}: {e}"))
}

/// One address as the kernel reported it, to be added back unchanged.
#[derive(Debug, Clone)]
struct Addr {
    family: u8,
    prefixlen: u8,
    flags: u8,
    scope: u8,
    local: Option<Vec<u8>>,
    address: Option<Vec<u8>>,
}

struct HostDev<'a> {
    plan: &'a NetDevicePlan,
    field: String,
    index: u32,
    up: bool,
    addrs: Vec<Addr>,
}

/// Moves every planned device into the network namespace of `pid`, renamed, with its
/// addresses and up state restored there. Every device is looked up before any moves, so
/// a missing one leaves the host untouched.
pub fn move_all(devices: &[NetDevicePlan], pid: i32) -> Result<(), NetdevError> {
    if devices.is_empty() {
        return Ok(());
    }
    let top = "linux.netDevices";
    let host = Netlink::open().map_err(os_err(top, "open a netlink socket"))?;
    let all_addrs = host
        .addresses()
        .map_err(os_err(top, "list the host's addresses"))?;
    let mut found = Vec::new();
    for plan in devices {
        let field = format!("{top}.{}", plan.host);
        let index = if_index(&plan.host)
            .ok_or_else(|| err(&field, "no network interface of that name on the host"))?;
        found.push(HostDev {
            up: is_up(&plan.host).map_err(os_err(&field, "read its flags"))?,
            addrs: all_addrs
                .iter()
                .filter(|(i, _)| *i == index)
                .map(|(_, a)| a.clone())
                .collect(),
            plan,
            field,
            index,
        });
    }
    let ns_path = format!("/proc/{pid}/ns/net");
    let ns = File::open(&ns_path).map_err(os_err(top, &format!("open {ns_path}")))?;
    for d in &found {
        let mut req = Request::new(libc::RTM_NEWLINK, 0);
        req.ifinfo(d.index, 0, 0);
        req.attr(libc::IFLA_NET_NS_FD, &(ns.as_raw_fd() as u32).to_ne_bytes());
        req.attr(libc::IFLA_IFNAME, &nul_terminated(&d.plan.name));
        host.ack(req).map_err(os_err(
            &d.field,
            &format!("move it into the container as {:?}", d.plan.name),
        ))?;
    }
    let names: Vec<&str> = found.iter().map(|d| d.plan.name.as_str()).collect();
    let inner =
        socket_in(&ns, &names).map_err(os_err(top, "open a netlink socket in the container"))?;
    for d in &found {
        let index = inner
            .index
            .iter()
            .find(|(name, _)| *name == d.plan.name)
            .map(|(_, i)| *i)
            .ok_or_else(|| {
                err(
                    &d.field,
                    format!("{:?} not found after the move", d.plan.name),
                )
            })?;
        for a in &d.addrs {
            let mut req = Request::new(libc::RTM_NEWADDR, libc::NLM_F_CREATE | libc::NLM_F_EXCL);
            req.ifaddr(a, index);
            for (ty, v) in [(libc::IFA_LOCAL, &a.local), (libc::IFA_ADDRESS, &a.address)] {
                if let Some(v) = v {
                    req.attr(ty, v);
                }
            }
            match inner.sock.ack(req) {
                // Already there: the kernel made it itself (an IPv6 link-local address).
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                r => r.map_err(os_err(&d.field, "add its address back in the container"))?,
            }
        }
        if d.up {
            let mut req = Request::new(libc::RTM_NEWLINK, 0);
            let up = libc::IFF_UP as u32;
            req.ifinfo(index, up, up);
            inner
                .sock
                .ack(req)
                .map_err(os_err(&d.field, "set it up in the container"))?;
        }
    }
    Ok(())
}

/// A netlink socket in the container's namespace and the interface indexes there.
struct Inner {
    sock: Netlink,
    index: Vec<(String, u32)>,
}

/// Enters the namespace only to open a socket and look up names: a socket stays in the
/// namespace it was made in, so all the rest happens from the runtime's own namespace
/// (where the hooks that follow expect to run).
fn socket_in(ns: &File, names: &[&str]) -> std::io::Result<Inner> {
    let own = File::open("/proc/self/ns/net")?;
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)?;
    // if_nametoindex asks through a socket of the namespace it runs in.
    let inner = Netlink::open().map(|sock| Inner {
        sock,
        index: names
            .iter()
            .filter_map(|n| Some((n.to_string(), if_index(n)?)))
            .collect(),
    });
    // Staying in the container's namespace would be worse than any error above.
    nix::sched::setns(&own, CloneFlags::CLONE_NEWNET)?;
    inner
}

fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn is_up(name: &str) -> std::io::Result<bool> {
    // Asked of the kernel in our own network namespace: /sys/class/net would describe the
    // namespace of whoever mounted /sys, which need not be ours.
    let (_, req) = if_flags(name)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short != 0)
}

/// An inet socket and the interface's flags (SIOCGIFFLAGS), ready for SIOCSIFFLAGS.
fn if_flags(name: &str) -> std::io::Result<(OwnedFd, libc::ifreq)> {
    // SAFETY: a plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned only here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS writes into the ifreq we own, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((sock, req))
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Netlink lengths and attributes are padded to 4 bytes.
fn align(n: usize) -> usize {
    (n + 3) & !3
}

const HDR: usize = 16;

/// One request: nlmsghdr, then the fixed struct, then attributes.
struct Request(Vec<u8>);

impl Request {
    fn new(ty: u16, flags: libc::c_int) -> Request {
        let mut b = vec![0u8; HDR];
        b[4..6].copy_from_slice(&ty.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | flags) as u16;
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        Request(b)
    }

    /// struct ifinfomsg: family, pad, type, index, flags, change.
    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) {
        self.0.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        self.0.extend_from_slice(&index.to_ne_bytes());
        self.0.extend_from_slice(&flags.to_ne_bytes());
        self.0.extend_from_slice(&change.to_ne_bytes());
    }

    /// struct ifaddrmsg: family, prefixlen, flags, scope, index.
    fn ifaddr(&mut self, a: &Addr, index: u32) {
        self.0
            .extend_from_slice(&[a.family, a.prefixlen, a.flags, a.scope]);
        self.0.extend_from_slice(&index.to_ne_bytes());
    }

    fn attr(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align(self.0.len()), 0);
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.0
    }
}

struct Netlink {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

/// The messages of one received packet: (type, sequence number, payload).
fn messages(buf: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + HDR <= buf.len() {
        let u32_at = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let len = u32_at(at) as usize;
        if len < HDR || at + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        out.push((ty, u32_at(at + 8), &buf[at + HDR..at + len]));
        at += align(len);
    }
    out
}

impl Netlink {
    fn open() -> std::io::Result<Netlink> {
        // SAFETY: plain socket(2); the fd is owned right below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Netlink {
            // SAFETY: a new fd nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: std::cell::Cell::new(0),
        })
    }

    fn send(&self, req: Request) -> std::io::Result<u32> {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let buf = req.finish(seq);
        // SAFETY: sending an initialised buffer; an unconnected netlink socket sends to
        // the kernel.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(seq)
    }

    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: receiving into a buffer of the length given.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(std::io::Error::other("netlink reply larger than expected"));
        }
        Ok(n)
    }

    /// Sends a request and waits for its NLMSG_ERROR answer (0: done).
    fn ack(&self, mut req: Request) -> std::io::Result<()> {
        let flags = u16::from_ne_bytes([req.0[6], req.0[7]]) | libc::NLM_F_ACK as u16;
        req.0[6..8].copy_from_slice(&flags.to_ne_bytes());
        let seq = self.send(req)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf)?;
            for (ty, s, payload) in messages(&buf[..n]) {
                if s == seq && ty == libc::NLMSG_ERROR as u16 && payload.len() >= 4 {
                    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    return match code {
                        0 => Ok(()),
                        c => Err(std::io::Error::from_raw_os_error(-c)),
                    };
                }
            }
        }
    }

    /// Every address in this namespace, with the index of its interface.
    fn addresses(&self) -> std::io::Result<Vec<(u32, Addr)>> {
        // A dump answers with its messages then NLMSG_DONE, so no NLM_F_ACK.
        let mut req = Request::new(libc::RTM_GETADDR, libc::NLM_F_DUMP);
        req.0
            .extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0]);
        let seq = self.send(req)?;
        // Dump packets are at most 32 KiB.
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        loop {
            let n = self.recv(&mut buf)?;
            for (ty, s, payload) in messages(&buf[..n]) {
                if s != seq {
                    continue;
                }
                match ty {
                    t if t == libc::NLMSG_DONE as u16 => return Ok(out),
                    t if t == libc::NLMSG_ERROR as u16 && payload.len() >= 4 => {
                        let code =
                            i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        return Err(std::io::Error::from_raw_os_error(-code));
                    }
                    libc::RTM_NEWADDR => out.extend(parse_addr(payload)),
                    _ => {}
                }
            }
        }
    }
}

/// struct ifaddrmsg and its IFA_LOCAL / IFA_ADDRESS attributes.
fn parse_addr(p: &[u8]) -> Option<(u32, Addr)> {
    let head = p.get(..8)?;
    let index = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
    let mut a = Addr {
        family: head[0],
        prefixlen: head[1],
        flags: head[2],
        scope: head[3],
        local: None,
        address: None,
    };
    let mut at = 8;
    while at + 4 <= p.len() {
        let len = u16::from_ne_bytes([p[at], p[at + 1]]) as usize;
        let ty = u16::from_ne_bytes([p[at + 2], p[at + 3]]);
        if len < 4 || at + len > p.len() {
            break;
        }
        let value = p[at + 4..at + len].to_vec();
        match ty {
            libc::IFA_LOCAL => a.local = Some(value),
            libc::IFA_ADDRESS => a.address = Some(value),
            _ => {}
        }
        at += align(len);
    }
    Some((index, a))
}

/// Brings `lo` up in a network namespace berth created, as runc does: the kernel then gives
/// it 127.0.0.1/8 and ::1, so services in a container without other networking (podman
/// `--network none`, a pod without a CNI network) can still talk to themselves.
pub fn loopback_up() -> std::io::Result<()> {
    let (sock, mut req) = if_flags("lo")?;
    // SAFETY: the flags member is the one SIOCGIFFLAGS filled and SIOCSIFFLAGS reads; the
    // ifreq outlives the call.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let mut r = Request::new(libc::RTM_NEWLINK, 0);
        r.ifinfo(7, 1, 1);
        r.attr(libc::IFLA_IFNAME, &nul_terminated("eth7"));
        let b = r.finish(3);
        // 16 header + 16 ifinfomsg + 4 attr header + 5 bytes padded to 8.
        assert_eq!(b.len(), 44);
        assert_eq!(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]), 44);
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 3);
        assert_eq!(u16::from_ne_bytes([b[32], b[33]]), 9);
        assert_eq!(&b[36..41], b"eth7\0");
        let msgs = messages(&b);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].0, libc::RTM_NEWLINK);
        assert_eq!(msgs[0].2.len(), 28);
    }

    #[test]
    fn address_parsed() {
        let a = Addr {
            family: libc::AF_INET as u8,
            prefixlen: 32,
            flags: 0x80,
            scope: 0,
            local: None,
            address: None,
        };
        let mut r = Request::new(libc::RTM_NEWADDR, 0);
        r.ifaddr(&a, 5);
        r.attr(libc::IFA_LOCAL, &[169, 254, 77, 1]);
        r.attr(libc::IFA_ADDRESS, &[169, 254, 77, 2]);
        let b = r.finish(1);
        let (index, got) = parse_addr(&b[HDR..]).unwrap();
        assert_eq!(index, 5);
        assert_eq!((got.family, got.prefixlen, got.flags), (2, 32, 0x80));
        assert_eq!(got.local.as_deref(), Some(&[169, 254, 77, 1][..]));
        assert_eq!(got.address.as_deref(), Some(&[169, 254, 77, 2][..]));
    }
}
