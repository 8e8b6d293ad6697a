//! The kernel floor for `tuning/bench`: a UDP responder that does no DNS work. It receives
//! a batch of datagrams (recvmmsg), sets QR in each, and sends the batch back (sendmmsg).
//! Whatever a DNS server spends per query beyond this is its own.
//!
//! Usage: `floor ADDR:PORT` (runs until killed).

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

const BATCH: usize = 64;
const SIZE: usize = 4096;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:5300".into());
    let sock = UdpSocket::bind(&addr).unwrap_or_else(|e| {
        eprintln!("floor: cannot bind {addr}: {e}");
        std::process::exit(1);
    });
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; SIZE]; BATCH];
    // SAFETY: plain C structs; all-zero is a valid initial value for each.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: SIZE,
        })
        .collect();
    // SAFETY: as above.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    loop {
        for i in 0..BATCH {
            msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            iovs[i].iov_len = SIZE;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every message points at live buffers and addresses of the sizes given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        for i in 0..n {
            let len = msgs[i].msg_len as usize;
            if len > 2 {
                bufs[i][2] |= 0x80;
            }
            iovs[i].iov_len = len;
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: as above; lengths are those just received.
            let r = unsafe { libc::sendmmsg(fd, msgs[sent..].as_mut_ptr(), (n - sent) as u32, 0) };
            if r <= 0 {
                break;
            }
            sent += r as usize;
        }
    }
}
