//! Batched datagram I/O with `recvmmsg`/`sendmmsg`: one system call moves up to [`BATCH`]
//! datagrams in each direction, the way Knot DNS and NSD serve UDP. The buffers are allocated
//! once per socket; receiving and sending allocate nothing. One of the two places with
//! `unsafe` (with `net::sys`): the calls take raw pointers into buffers this struct owns.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest query we accept over UDP; longer datagrams arrive cut (MSG_TRUNC) and are dropped.
pub const MAX_QUERY: usize = 4096;
/// Capacity of each reply buffer: UDP replies stop at 1232 octets (`dns::reply`), so this
/// never grows.
pub const MAX_REPLY: usize = 4096;

/// Room for one control message holding a `timespec` (the arrival stamp).
const CONTROL_LEN: usize = 64;

/// Receive and reply buffers for one socket.
pub struct Batch {
    queries: Vec<[u8; MAX_QUERY]>,
    /// Control buffers, used when arrival stamps are asked for.
    control: Vec<[u64; CONTROL_LEN / 8]>,
    stamps: bool,
    arrived: [u64; BATCH],
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    peers: Vec<libc::sockaddr_storage>,
    peer_lens: [libc::socklen_t; BATCH],
    replies: Vec<Vec<u8>>,
    send: [bool; BATCH],
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    to_send: usize,
    sent: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            queries: vec![[0; MAX_QUERY]; BATCH],
            control: vec![[0; CONTROL_LEN / 8]; BATCH],
            stamps: false,
            arrived: [0; BATCH],
            lens: [0; BATCH],
            truncated: [false; BATCH],
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            peers: vec![unsafe { std::mem::zeroed() }; BATCH],
            peer_lens: [0; BATCH],
            replies: (0..BATCH).map(|_| Vec::with_capacity(MAX_REPLY)).collect(),
            send: [false; BATCH],
            iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            // SAFETY: mmsghdr is plain data; all zeroes (null pointers, zero lengths) is valid.
            hdrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            to_send: 0,
            sent: 0,
        }
    }
}

impl Batch {
    /// Whether to read the arrival stamps (the socket must have `sys::set_arrival_stamps`).
    pub fn read_stamps(&mut self, on: bool) {
        self.stamps = on;
    }

    /// When datagram `i` of the last receive arrived (CLOCK_REALTIME nanoseconds), if the
    /// stamps are read and the kernel gave one.
    pub fn arrived(&self, i: usize) -> Option<u64> {
        Some(self.arrived[i]).filter(|t| *t != 0)
    }

    /// Receives up to [`BATCH`] datagrams without blocking; `Ok(0)` when none is waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            let (control, control_len): (*mut libc::c_void, usize) = if self.stamps {
                (self.control[i].as_mut_ptr().cast(), CONTROL_LEN)
            } else {
                (std::ptr::null_mut(), 0)
            };
            self.iov[i] = libc::iovec {
                iov_base: self.queries[i].as_mut_ptr().cast(),
                iov_len: MAX_QUERY,
            };
            self.hdrs[i].msg_hdr = libc::msghdr {
                msg_name: (&mut self.peers[i] as *mut libc::sockaddr_storage).cast(),
                msg_namelen: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                msg_iov: &mut self.iov[i],
                msg_iovlen: 1,
                msg_control: control,
                msg_controllen: control_len,
                msg_flags: 0,
            };
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the lengths given, owned by `self`,
        // which outlives the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            self.lens[i] = (self.hdrs[i].msg_len as usize).min(MAX_QUERY);
            self.truncated[i] = self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.peer_lens[i] = self.hdrs[i].msg_hdr.msg_namelen;
            self.send[i] = false;
            self.arrived[i] = if self.stamps { stamp(&self.hdrs[i].msg_hdr) } else { 0 };
        }
        Ok(n)
    }

    /// Datagram `i` of the last receive (`None` if it was longer than [`MAX_QUERY`]), its
    /// reply buffer, and whether to send the reply.
    pub fn slot(&mut self, i: usize) -> (Option<&[u8]>, &mut Vec<u8>, &mut bool) {
        let query = (!self.truncated[i]).then(|| &self.queries[i][..self.lens[i]]);
        (query, &mut self.replies[i], &mut self.send[i])
    }

    /// The sender of datagram `i`.
    pub fn peer(&self, i: usize) -> SocketAddr {
        sockaddr(&self.peers[i], self.peer_lens[i]).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Lines up the marked replies of the first `n` datagrams for [`Batch::send`].
    pub fn prepare_send(&mut self, n: usize) {
        let mut count = 0;
        for i in 0..n {
            if !self.send[i] {
                continue;
            }
            self.iov[count] = libc::iovec {
                iov_base: self.replies[i].as_mut_ptr().cast(),
                iov_len: self.replies[i].len(),
            };
            self.hdrs[count].msg_hdr = libc::msghdr {
                msg_name: (&mut self.peers[i] as *mut libc::sockaddr_storage).cast(),
                msg_namelen: self.peer_lens[i],
                msg_iov: &mut self.iov[count],
                msg_iovlen: 1,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            };
            count += 1;
        }
        self.to_send = count;
        self.sent = 0;
    }

    /// Sends what [`Batch::prepare_send`] lined up. `Ok(n)`: `n` replies went out and
    /// nothing is left; `Err(WouldBlock)`: the socket buffer is full, call again once it is
    /// writable. A reply the kernel refuses for another reason is skipped and counted in
    /// `failed`.
    pub fn send(&mut self, fd: RawFd, failed: &mut usize) -> io::Result<usize> {
        while self.sent < self.to_send {
            // SAFETY: headers `sent..to_send` point at live reply buffers and peer addresses
            // owned by `self`.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs[self.sent..].as_mut_ptr(),
                    (self.to_send - self.sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                self.sent += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => return Err(e),
                // The first datagram failed (an unreachable peer, say): skip it.
                _ => {
                    self.sent += 1;
                    *failed += 1;
                }
            }
        }
        Ok(self.to_send)
    }
}

/// The SCM_TIMESTAMPNS stamp among a received message's control messages, 0 without one.
fn stamp(hdr: &libc::msghdr) -> u64 {
    // SAFETY: `hdr` is the header recvmmsg just filled: its control pointer and length
    // describe a buffer of this batch, and CMSG_FIRSTHDR/CMSG_NXTHDR stay within them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                return (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    0
}

/// A socket address from the kernel's representation.
fn sockaddr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is large enough.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
