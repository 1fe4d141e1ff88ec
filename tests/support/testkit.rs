//! What every test harness here needs: waiting without sleeping, and ports
//! without races. Shared by the e2e tests, `orgsync-sync`'s integration tests,
//! the slapd harness and the LDAP benchmark through
//! `#[path = ".../tests/support/testkit.rs"] mod testkit;`; depends on std and
//! tokio only.
//!
//! Waiting: every wait polls for the state it waits for, with a deadline, and
//! fails loudly when the state never comes ([`wait_for`]). A check that
//! something does NOT happen first waits for a positive sign that the system
//! had its chance (a daemon's next poll, a counter that moved), then asserts
//! that the state did not change.
//!
//! Ports: what a test starts binds port 0 and reports the port it got. A port
//! that must stay dead (a provider or a directory that is down) is held by a
//! [`ClosedPort`]: bound but not listening, so a connection to it is refused at
//! once, and the kernel hands it to nobody else meanwhile (neither for a bind
//! to port 0 nor as the local port of an outgoing connection).
#![allow(
    dead_code,
    clippy::panic,
    reason = "test support: each binary uses part of it, and fails loudly"
)]

use std::fmt::Display;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// What a probe answers: done (with a value), or not yet (with what it saw,
/// which the timeout message shows).
pub trait Probe {
    type Done;
    fn check(self) -> Result<Self::Done, String>;
}

impl Probe for bool {
    type Done = ();
    fn check(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    }
}

impl<T> Probe for Option<T> {
    type Done = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

impl<T, E: Display> Probe for Result<T, E> {
    type Done = T;
    fn check(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// The pause after the `n`th poll: short at first, then at most 100 ms.
fn pause(n: u32) -> Duration {
    Duration::from_millis(5u64 << n.min(5)).min(Duration::from_millis(100))
}

fn timed_out(what: &str, within: Duration, polls: u32, last: &str) -> ! {
    panic!("timed out after {within:?} ({polls} polls) waiting for {what}; last seen: {last}")
}

/// Polls `probe` until it is done and returns its value; panics after
/// `within`, naming `what` and the last thing the probe saw.
pub async fn wait_for<P: Probe>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> P,
) -> P::Done {
    let deadline = Instant::now() + within;
    let mut polls = 0;
    loop {
        polls += 1;
        match probe().await.check() {
            Ok(done) => return done,
            Err(last) if Instant::now() >= deadline => timed_out(what, within, polls, &last),
            Err(_) => tokio::time::sleep(pause(polls)).await,
        }
    }
}

/// [`wait_for`] for code outside an async runtime (starting child processes).
pub fn wait_for_blocking<P: Probe>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> P,
) -> P::Done {
    let deadline = Instant::now() + within;
    let mut polls = 0;
    loop {
        polls += 1;
        match probe().check() {
            Ok(done) => return done,
            Err(last) if Instant::now() >= deadline => timed_out(what, within, polls, &last),
            Err(_) => std::thread::sleep(pause(polls)),
        }
    }
}

/// A 127.0.0.1 port bound without listening: connections are refused; the
/// port is released when dropped.
pub struct ClosedPort {
    port: u16,
    // Held for its binding (a socket that never listens).
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    /// A fresh port (the kernel's choice) that nothing listens on.
    pub fn new() -> ClosedPort {
        Self::hold(0).unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"))
    }

    /// Holds `port`, just released by a process the test stopped, so that it
    /// stays dead. Fails when another socket is bound to it (TIME_WAIT
    /// connections of the stopped process do not count: `SO_REUSEADDR`).
    pub fn hold(port: u16) -> std::io::Result<ClosedPort> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let port = socket.local_addr()?.port();
        Ok(ClosedPort {
            port,
            _socket: socket,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
