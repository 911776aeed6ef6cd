//! Sockets shared by the SIP and DNS listeners: the per-core UDP socket group and the
//! error that names an address that cannot be bound. The bottom of the tree beside
//! `config` and `name`: it knows nothing of SIP or DNS, so neither sits above the
//! other.

use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// An address that cannot be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {addr}: {error}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub error: std::io::Error,
}

/// One UDP socket per core on the same address with SO_REUSEPORT: the kernel spreads
/// datagrams over them by the sender's address and port, so each runtime worker answers
/// its share, and one peer's retransmissions and ACKs always reach the same socket (and
/// its transaction table). With port 0 the first socket's ephemeral port is shared by
/// the rest, so the group is one address.
pub fn udp_sockets(addr: SocketAddr) -> std::io::Result<Vec<UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<UdpSocket> = Vec::with_capacity(n);
    let mut addr = addr;
    for _ in 0..n {
        if let Some(first) = out.first() {
            addr = first.local_addr()?;
        }
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_port(true)?;
        // Room for bursts: a full 64 KiB message queue per socket (the kernel caps it).
        let _ = s.set_recv_buffer_size(4 << 20);
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        out.push(UdpSocket::from_std(s.into())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn udp_group_on_port_zero_shares_one_port() {
        let socks = udp_sockets("127.0.0.1:0".parse().unwrap()).unwrap();
        let first = socks[0].local_addr().unwrap();
        assert_ne!(first.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), first);
        }
    }
}
