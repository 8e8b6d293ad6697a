//! The socket options std and socket2 do not offer, one `setsockopt`/`getsockopt` call per
//! function. With `net::mmsg`, the only `unsafe` of the crate.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// Sets DF on outgoing datagrams and never fragments them locally, using the interface MTU
/// rather than a path MTU learnt from (possibly forged) ICMP messages. Replies are capped at
/// 1232 octets, well under any interface MTU in use.
pub fn set_dont_fragment(sock: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_INTERFACE,
        )
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_INTERFACE)
    };
    setsockopt_int(sock, level, name, value)
}

/// Asks the kernel to stamp each received datagram with its arrival time (SO_TIMESTAMPNS:
/// CLOCK_REALTIME, read back by `net::mmsg`), or stops it.
pub fn set_arrival_stamps(sock: &impl AsRawFd, on: bool) -> io::Result<()> {
    setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, libc::c_int::from(on))
}

/// Sets the receive buffer (the kernel doubles it for its bookkeeping and caps it at
/// net.core.rmem_max).
pub fn set_recv_buffer(sock: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    setsockopt_int(
        sock,
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX),
    )
}

/// CLOCK_REALTIME in nanoseconds, the clock of the arrival stamps.
pub fn realtime_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is valid for writes; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

fn setsockopt_int(sock: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed; the descriptor is owned
    // by `sock`, which the caller keeps alive.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads an integer socket option (for tests of the options above).
#[cfg(test)]
pub fn getsockopt_int(sock: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}
