//! Socket setup: SO_REUSEPORT before bind, so every shard gets its own socket per address
//! and the kernel spreads packets and connections across them.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of TCP listeners.
const LISTEN_BACKLOG: i32 = 1024;
/// Receive buffer asked for UDP sockets (the kernel caps it at net.core.rmem_max).
pub const UDP_RECV_BUFFER: usize = 4 << 20;

fn base(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // `::` covers IPv6 only; IPv4 gets its own `0.0.0.0` socket.
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A UDP socket bound to `addr` with SO_REUSEPORT.
pub fn udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = base(addr, Type::DGRAM, Protocol::UDP)?;
    // Best effort: a bigger queue absorbs bursts; the kernel may cap it.
    let _ = s.set_recv_buffer_size(UDP_RECV_BUFFER);
    super::sys::set_dont_fragment(&s, addr.is_ipv6())?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A listening TCP socket bound to `addr` with SO_REUSEPORT.
pub fn tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = base(addr, Type::STREAM, Protocol::TCP)?;
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::sys::getsockopt_int;

    #[test]
    fn udp_sockets_set_df_and_reuseport() {
        let v4 = udp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(
            getsockopt_int(&v4, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER).unwrap(),
            libc::IP_PMTUDISC_INTERFACE
        );
        assert_eq!(getsockopt_int(&v4, libc::SOL_SOCKET, libc::SO_REUSEPORT).unwrap(), 1);
        let v6 = udp("[::1]:0".parse().unwrap()).unwrap();
        assert_eq!(
            getsockopt_int(&v6, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER).unwrap(),
            libc::IPV6_PMTUDISC_INTERFACE
        );
        assert_eq!(getsockopt_int(&v6, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap(), 1);
    }

    #[test]
    fn two_sockets_share_a_port() {
        let a = tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = tcp(SocketAddr::from(([127, 0, 0, 1], port)));
        assert!(b.is_ok(), "SO_REUSEPORT lets every shard bind the same address");
    }
}
