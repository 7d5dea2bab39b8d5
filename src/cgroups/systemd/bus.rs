//! A blocking D-Bus connection to systemd over a unix socket: SASL EXTERNAL, method calls,
//! and waiting for a signal with a deadline. One socket, no threads, no event loop.
//!
//! Which socket: `$DBUS_SYSTEM_BUS_ADDRESS` when set (a `unix:path=` address), else the
//! system bus /run/dbus/system_bus_socket (Hello, then a match rule for JobRemoved), as
//! runc (go-systemd) does; as root, systemd's private socket /run/systemd/private when the
//! system bus cannot be reached (dbus-daemon down or not started yet). The system bus comes
//! first because in the guest lane systemd 252 answered a StopUnit on a fresh private
//! connection only once: later ones got no reply at all within 30 s, while
//! StartTransientUnit and SetUnitProperties there, and everything over the bus, did.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::wire::{self, Message, Value, WireError};

pub const SYSTEMD: &str = "org.freedesktop.systemd1";
pub const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const DBUS: &str = "org.freedesktop.DBus";
const PRIVATE: &str = "/run/systemd/private";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("D-Bus {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("D-Bus {path}: authentication refused ({reply:?})")]
    Auth { path: String, reply: String },
    #[error("D-Bus {path}: {source}")]
    Wire { path: String, source: WireError },
    /// An error reply: its D-Bus name and message.
    #[error("{message} ({name})")]
    Remote { name: String, message: String },
    #[error("D-Bus {path}: no answer within {secs} s while waiting for {what}")]
    Timeout {
        path: String,
        secs: u64,
        what: String,
    },
}

impl BusError {
    /// The D-Bus error name of an error reply ("org.freedesktop.systemd1.NoSuchUnit").
    pub fn name(&self) -> Option<&str> {
        match self {
            BusError::Remote { name, .. } => Some(name),
            _ => None,
        }
    }
}

pub struct Bus {
    sock: UnixStream,
    path: String,
    serial: u32,
    /// Bytes read past the last complete message.
    buf: Vec<u8>,
    /// Signals that arrived while a reply was awaited.
    signals: Vec<Message>,
    /// True on a bus (Hello, match rules); false on systemd's private peer socket.
    pub via_broker: bool,
    /// Our name on a bus, from Hello.
    pub unique_name: Option<String>,
}

/// `$DBUS_SYSTEM_BUS_ADDRESS`'s socket path.
fn env_address() -> Option<String> {
    unix_path(&std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok()?)
}

/// The first `unix:path=` socket of a D-Bus address list ("unix:path=/a,guid=…;tcp:…").
fn unix_path(a: &str) -> Option<String> {
    a.split(';')
        .flat_map(|t| t.strip_prefix("unix:"))
        .flat_map(|kv| kv.split(','))
        .find_map(|kv| kv.strip_prefix("path="))
        .map(str::to_string)
}

impl Bus {
    /// Connects to systemd (see the module comment for which socket) and authenticates.
    pub fn systemd() -> Result<Bus, BusError> {
        if let Some(path) = env_address() {
            return Bus::connect(&path, true);
        }
        match UnixStream::connect(SYSTEM_BUS) {
            Ok(sock) => Bus::over(sock, SYSTEM_BUS, true),
            // SAFETY: geteuid has no preconditions.
            Err(_) if unsafe { libc::geteuid() } == 0 && std::path::Path::new(PRIVATE).exists() => {
                Bus::connect(PRIVATE, false)
            }
            Err(source) => Err(BusError::Io {
                op: "connect",
                path: SYSTEM_BUS.to_string(),
                source,
            }),
        }
    }

    pub fn connect(path: &str, via_broker: bool) -> Result<Bus, BusError> {
        let sock = UnixStream::connect(path).map_err(|source| BusError::Io {
            op: "connect",
            path: path.to_string(),
            source,
        })?;
        Bus::over(sock, path, via_broker)
    }

    /// Authenticates on a connected socket (and says Hello to a broker).
    fn over(sock: UnixStream, path: &str, via_broker: bool) -> Result<Bus, BusError> {
        sock.set_write_timeout(Some(Duration::from_secs(30)))
            .map_err(|source| BusError::Io {
                op: "set timeout",
                path: path.to_string(),
                source,
            })?;
        let mut bus = Bus {
            sock,
            path: path.to_string(),
            serial: 0,
            buf: Vec::new(),
            signals: Vec::new(),
            via_broker,
            unique_name: None,
        };
        bus.auth()?;
        if via_broker {
            let name = bus.call(DBUS, "/org/freedesktop/DBus", DBUS, "Hello", &[])?;
            bus.unique_name = name.first().and_then(Value::as_str).map(str::to_string);
        }
        Ok(bus)
    }

    fn io_err(&self, op: &'static str) -> impl FnOnce(io::Error) -> BusError + '_ {
        move |source| BusError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    /// SASL EXTERNAL: a NUL byte, then our uid in decimal, hex-encoded; OK; BEGIN.
    fn auth(&mut self) -> Result<(), BusError> {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        (&self.sock)
            .write_all(hello.as_bytes())
            .map_err(self.io_err("write auth"))?;
        let reply = self.auth_line()?;
        if !reply.starts_with("OK ") {
            return Err(BusError::Auth {
                path: self.path.clone(),
                reply,
            });
        }
        (&self.sock)
            .write_all(b"BEGIN\r\n")
            .map_err(self.io_err("write auth"))
    }

    /// One "\r\n"-terminated line, read a byte at a time: nothing after it may be consumed
    /// (the server sends nothing before BEGIN anyway).
    fn auth_line(&mut self) -> Result<String, BusError> {
        self.sock
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(self.io_err("set timeout"))?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 512 {
            let n = (&self.sock)
                .read(&mut b)
                .map_err(self.io_err("read auth"))?;
            if n == 0 {
                break;
            }
            line.push(b[0]);
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    /// Calls a method and returns its reply's body; an error reply is `BusError::Remote`.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        body: &[Value],
    ) -> Result<Vec<Value>, BusError> {
        self.serial += 1;
        let serial = self.serial;
        let msg = wire::method_call(serial, dest, path, iface, member, body);
        crate::logging::debug(|| format!("D-Bus {}: call {member} (serial {serial})", self.path));
        (&self.sock).write_all(&msg).map_err(self.io_err("write"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.read_message(deadline, member)?;
            match m.kind {
                wire::SIGNAL => self.signals.push(m),
                wire::METHOD_RETURN if m.reply_serial == Some(serial) => return Ok(m.body),
                wire::ERROR if m.reply_serial == Some(serial) => {
                    return Err(BusError::Remote {
                        name: m.error_name.unwrap_or_default(),
                        message: m
                            .body
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    });
                }
                _ => {}
            }
        }
    }

    /// A call to systemd's manager object.
    pub fn manager(&mut self, member: &str, body: &[Value]) -> Result<Vec<Value>, BusError> {
        self.call(SYSTEMD, SYSTEMD_PATH, MANAGER, member, body)
    }

    /// Asks the broker to route systemd's JobRemoved signals to us (a private connection
    /// gets them unasked).
    pub fn watch_jobs(&mut self) -> Result<(), BusError> {
        if !self.via_broker {
            return Ok(());
        }
        let rule = format!(
            "type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='JobRemoved',path='{SYSTEMD_PATH}'"
        );
        self.call(
            DBUS,
            "/org/freedesktop/DBus",
            DBUS,
            "AddMatch",
            &[Value::Str(rule)],
        )?;
        Ok(())
    }

    /// Waits until a signal for which `want` is true arrives, or `timeout` passes.
    pub fn wait_signal(
        &mut self,
        timeout: Duration,
        what: &str,
        want: impl Fn(&Message) -> bool,
    ) -> Result<Message, BusError> {
        if let Some(i) = self.signals.iter().position(&want) {
            return Ok(self.signals.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.read_message(deadline, what)?;
            if m.kind == wire::SIGNAL && want(&m) {
                return Ok(m);
            }
        }
    }

    fn read_message(&mut self, deadline: Instant, what: &str) -> Result<Message, BusError> {
        loop {
            let wire_err = |source| BusError::Wire {
                path: self.path.clone(),
                source,
            };
            if let Some(len) = wire::message_len(&self.buf).map_err(wire_err)? {
                if self.buf.len() >= len {
                    let rest = self.buf.split_off(len);
                    let m = wire::parse(&self.buf);
                    self.buf = rest;
                    if let Ok(m) = &m {
                        crate::logging::debug(|| {
                            format!(
                                "D-Bus {}: got type {} serial {} reply to {:?} {} {}",
                                self.path,
                                m.kind,
                                m.serial,
                                m.reply_serial,
                                m.member.as_deref().unwrap_or(""),
                                m.error_name.as_deref().unwrap_or("")
                            )
                        });
                    }
                    return m.map_err(|source| BusError::Wire {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = || BusError::Timeout {
                path: self.path.clone(),
                secs: 30,
                what: what.to_string(),
            };
            if left.is_zero() {
                return Err(timeout());
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(self.io_err("set timeout"))?;
            let mut chunk = [0u8; 4096];
            match (&self.sock).read(&mut chunk) {
                Ok(0) => {
                    return Err(BusError::Io {
                        op: "read",
                        path: self.path.clone(),
                        source: io::Error::from(io::ErrorKind::UnexpectedEof),
                    });
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(timeout());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err("read")(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a real message broker: a private dbus-daemon on a socket of the test's own.
    use super::*;
    use std::process::{Child, Command, Stdio};

    struct Daemon {
        child: Child,
        dir: std::path::PathBuf,
        sock: String,
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn daemon(tag: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("berth-dbus-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sock = dir.join("bus").to_string_lossy().into_owned();
        let conf = dir.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"
 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">
<busconfig><type>custom</type><listen>unix:path={sock}</listen><auth>EXTERNAL</auth>
<policy context=\"default\"><allow send_destination=\"*\"/><allow receive_sender=\"*\"/>
<allow own=\"*\"/></policy></busconfig>"
            ),
        )
        .expect("config");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus-daemon) runs");
        let d = Daemon { child, dir, sock };
        for _ in 0..500 {
            if UnixStream::connect(&d.sock).is_ok() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("dbus-daemon did not listen on {}", d.sock);
    }

    #[test]
    fn hello_call_match_and_signal_on_a_real_broker() {
        let d = daemon("sig");
        let mut bus = Bus::connect(&d.sock, true).expect("connect");
        let me = bus.unique_name.clone().expect("a unique name from Hello");
        assert!(me.starts_with(':'), "{me}");
        let id = bus
            .call(DBUS, "/org/freedesktop/DBus", DBUS, "GetId", &[])
            .expect("GetId");
        let id = id
            .first()
            .and_then(Value::as_str)
            .expect("a string")
            .to_string();
        assert_eq!(id.len(), 32, "{id}");
        // The broker announces every new client to those who asked for it.
        let rule = "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged'";
        bus.call(
            DBUS,
            "/org/freedesktop/DBus",
            DBUS,
            "AddMatch",
            &[Value::str(rule)],
        )
        .expect("AddMatch");
        let other = Bus::connect(&d.sock, true).expect("second client");
        let name = other.unique_name.clone().expect("name");
        let m = bus
            .wait_signal(Duration::from_secs(10), "NameOwnerChanged", |m| {
                m.member.as_deref() == Some("NameOwnerChanged")
                    && m.body.first().and_then(Value::as_str) == Some(name.as_str())
            })
            .expect("the signal");
        assert_eq!(m.body.get(2).and_then(Value::as_str), Some(name.as_str()));
    }

    #[test]
    fn error_replies_and_timeouts() {
        let d = daemon("err");
        let mut bus = Bus::connect(&d.sock, true).expect("connect");
        let e = bus
            .call(DBUS, "/org/freedesktop/DBus", DBUS, "NoSuchMethod", &[])
            .unwrap_err();
        assert_eq!(
            e.name(),
            Some("org.freedesktop.DBus.Error.UnknownMethod"),
            "{e}"
        );
        let e = bus
            .call(
                DBUS,
                "/org/freedesktop/DBus",
                DBUS,
                "GetNameOwner",
                &[Value::str("no.such.name")],
            )
            .unwrap_err();
        assert_eq!(
            e.name(),
            Some("org.freedesktop.DBus.Error.NameHasNoOwner"),
            "{e}"
        );
        let t = std::time::Instant::now();
        let e = bus
            .wait_signal(Duration::from_millis(300), "a signal nobody sends", |_| {
                false
            })
            .unwrap_err();
        assert!(matches!(e, BusError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        // The connection still works after a timeout.
        bus.call(DBUS, "/org/freedesktop/DBus", DBUS, "GetId", &[])
            .expect("GetId");
    }

    #[test]
    fn bus_addresses() {
        let p = |a: &str| unix_path(a);
        assert_eq!(
            p("unix:path=/run/dbus/system_bus_socket").as_deref(),
            Some("/run/dbus/system_bus_socket")
        );
        assert_eq!(p("tcp:host=x;unix:guid=1,path=/b").as_deref(), Some("/b"));
        assert_eq!(p("unix:abstract=/x"), None);
        assert_eq!(p(""), None);
    }

    #[test]
    fn a_missing_socket_is_a_clear_error() {
        let e = Bus::connect("/nonexistent/berth-test/bus", true)
            .err()
            .expect("an error");
        assert!(
            e.to_string()
                .contains("connect /nonexistent/berth-test/bus"),
            "{e}"
        );
    }
}
