//! systemd notifications (`STATUS=`, `EXTEND_TIMEOUT_USEC=`), so long waits show in
//! `systemctl status` and do not trip the unit's start timeout. A no-op outside systemd.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

fn send(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    if let (Ok(addr), Ok(sock)) = (addr, UnixDatagram::unbound()) {
        let _ = sock.send_to_addr(message.as_bytes(), &addr);
    }
}

pub fn status(text: &str) {
    send(&format!("STATUS={text}"));
}

/// Ask systemd for `extra` more start-up time (plus a margin for the work after the wait).
pub fn extend_timeout(extra: Duration) {
    let usec = (extra + Duration::from_secs(120)).as_micros();
    send(&format!("EXTEND_TIMEOUT_USEC={usec}"));
}
