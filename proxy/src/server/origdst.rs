//! The original destination of a connection redirected by the firewall (iptables/nftables
//! `REDIRECT`/`DNAT`): `getsockopt(SO_ORIGINAL_DST)`. The only unsafe code of the proxy.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// `SO_ORIGINAL_DST` (linux/netfilter_ipv4.h) and `IP6T_SO_ORIGINAL_DST`
/// (linux/netfilter_ipv6/ip6_tables.h): both 80.
const SO_ORIGINAL_DST: libc::c_int = 80;

/// The address the client originally connected to, before NAT redirected it here.
#[allow(unsafe_code)]
pub fn original_dst(stream: &impl AsRawFd, ipv6: bool) -> std::io::Result<SocketAddr> {
    let fd = stream.as_raw_fd();
    if ipv6 {
        // SAFETY: sockaddr_in6 is plain old data, so all-zero is a valid value; the kernel
        // writes at most `len` bytes into it, `len` is its exact size, and `fd` is a live
        // socket borrowed from `stream` for the duration of the call.
        let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: see above; the pointers are to live, correctly sized locals.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_IPV6,
                SO_ORIGINAL_DST,
                (&mut addr as *mut libc::sockaddr_in6).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ip = Ipv6Addr::from(addr.sin6_addr.s6_addr);
        Ok(SocketAddr::V6(SocketAddrV6::new(
            ip,
            u16::from_be(addr.sin6_port),
            addr.sin6_flowinfo,
            addr.sin6_scope_id,
        )))
    } else {
        // SAFETY: as above, for sockaddr_in.
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: the pointers are to live, correctly sized locals; `fd` is a live socket.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_IP,
                SO_ORIGINAL_DST,
                (&mut addr as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        Ok(SocketAddr::V4(SocketAddrV4::new(
            ip,
            u16::from_be(addr.sin_port),
        )))
    }
}
