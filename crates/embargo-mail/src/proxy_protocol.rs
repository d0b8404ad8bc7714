//! The PROXY protocol (HAProxy's, versions 1 and 2) in front of the SMTP listener.
//!
//! Behind a TCP load balancer every connection comes from the balancer's address, so the
//! per-address limits would count all senders together and SPF would check the balancer. A
//! balancer that speaks the PROXY protocol (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB,
//! Postfix's `smtpd_upstream_proxy_protocol` peers) first sends one header naming the
//! client's address. It is believed only from the addresses the operator names
//! (`mail.proxy_protocol_from`); a connection from there must start with a valid header and
//! is closed without a greeting otherwise, and a header from anywhere else is just an
//! unknown SMTP command.
//!
//! Specification: <https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt>. Written
//! here: the header is two small fixed formats, and the crates that parse it (ppp,
//! proxy-header) bring their own I/O models for a dozen lines of reading.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The twelve bytes that start a version 2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 header is at most 107 bytes with its CRLF.
const V1_MAX: usize = 107;
/// Longest version 2 address block accepted (addresses and TLVs); HAProxy sends well under.
const V2_MAX: usize = 1024;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PROXY protocol: {what}"))
}

/// Reads one PROXY protocol header (version 1 or 2) from the start of a connection and
/// nothing more. Returns the client's address, or `None` when the header says the
/// connection is the proxy's own (v1 `UNKNOWN`, v2 `LOCAL` such as a health check, or an
/// address family other than TCP over IPv4/IPv6).
pub async fn read_header<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<SocketAddr>> {
    // Every header is at least 15 bytes (`PROXY UNKNOWN\r\n`), so twelve can be read at once
    // without taking bytes of the SMTP session that follows.
    let mut head = [0u8; 12];
    reader.read_exact(&mut head).await?;
    if head == V2_SIGNATURE {
        return read_v2(reader).await;
    }
    if !head.starts_with(b"PROXY ") {
        return Err(invalid("the connection did not start with a header"));
    }
    let mut line = head.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(invalid("version 1 header longer than 107 bytes"));
        }
        line.push(reader.read_u8().await?);
    }
    parse_v1(&line[..line.len() - 2])
}

fn parse_v1(line: &[u8]) -> io::Result<Option<SocketAddr>> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("version 1 header is not ASCII"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), source, _destination, source_port, _destination_port] => {
            let ip: IpAddr = match *family {
                "TCP4" => IpAddr::V4(source.parse::<Ipv4Addr>().map_err(|_| invalid("bad IPv4 source address"))?),
                _ => IpAddr::V6(source.parse::<Ipv6Addr>().map_err(|_| invalid("bad IPv6 source address"))?),
            };
            // Ports are decimal without leading zeros (the specification's rule).
            if source_port.len() > 1 && source_port.starts_with('0') {
                return Err(invalid("bad source port"));
            }
            let port: u16 = source_port.parse().map_err(|_| invalid("bad source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(invalid("malformed version 1 header")),
    }
}

async fn read_v2<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<SocketAddr>> {
    let mut fixed = [0u8; 4];
    reader.read_exact(&mut fixed).await?;
    let [version_command, family, high, low] = fixed;
    if version_command >> 4 != 2 {
        return Err(invalid("unknown version 2 version"));
    }
    let length = usize::from(u16::from_be_bytes([high, low]));
    if length > V2_MAX {
        return Err(invalid("version 2 address block too long"));
    }
    let mut block = vec![0u8; length];
    reader.read_exact(&mut block).await?;
    match version_command & 0x0f {
        0x0 => return Ok(None), // LOCAL: the proxy's own connection (a health check).
        0x1 => {}
        _ => return Err(invalid("unknown version 2 command")),
    }
    match family {
        // TCP (or UDP) over IPv4: source, destination, source port, destination port.
        0x11 | 0x12 => {
            let b = block.get(..12).ok_or_else(|| invalid("short IPv4 address block"))?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([b[8], b[9]]))))
        }
        0x21 | 0x22 => {
            let b = block.get(..36).ok_or_else(|| invalid("short IPv6 address block"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[..16]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), u16::from_be_bytes([b[32], b[33]]))))
        }
        // UNSPEC or Unix sockets: no client address to believe.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (io::Result<Option<SocketAddr>>, Vec<u8>) {
        let mut reader = bytes;
        let result = read_header(&mut reader).await;
        (result, reader.to_vec())
    }

    #[tokio::test]
    async fn version_1_names_the_client_and_leaves_the_session_bytes() {
        let (got, rest) = read(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n").await;
        assert_eq!(got.unwrap(), Some("192.0.2.7:40000".parse().unwrap()));
        assert_eq!(rest, b"EHLO x\r\n");
        let (got, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 25\r\n").await;
        assert_eq!(got.unwrap(), Some("[2001:db8::7]:40000".parse().unwrap()));
        let (got, rest) = read(b"PROXY UNKNOWN\r\nQUIT\r\n").await;
        assert_eq!(got.unwrap(), None);
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[tokio::test]
    async fn malformed_version_1_headers_are_refused() {
        for bad in [
            &b"EHLO client.example\r\n"[..],
            b"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",
            b"PROXY TCP4 2001:db8::7 198.51.100.1 40000 25\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 070000 25\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 040 25\r\n",
            b"PROXY TCP5 192.0.2.7 198.51.100.1 40000 25\r\n",
            b"PROXY TCP4 192.0.2.7\n",
        ] {
            let (got, _) = read(bad).await;
            assert!(got.is_err(), "{:?} was believed", String::from_utf8_lossy(bad));
        }
        // No end of line within 107 bytes.
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(read(&long).await.0.is_err());
    }

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
        out.extend_from_slice(block);
        out
    }

    #[tokio::test]
    async fn version_2_names_the_client_skips_tlvs_and_leaves_the_session_bytes() {
        let mut block = vec![192, 0, 2, 7, 198, 51, 100, 1];
        block.extend_from_slice(&40000u16.to_be_bytes());
        block.extend_from_slice(&25u16.to_be_bytes());
        block.extend_from_slice(&[0x04, 0x00, 0x02, 0xab, 0xcd]); // a TLV (NOOP)
        let mut bytes = v2(0x1, 0x11, &block);
        bytes.extend_from_slice(b"EHLO x\r\n");
        let (got, rest) = read(&bytes).await;
        assert_eq!(got.unwrap(), Some("192.0.2.7:40000".parse().unwrap()));
        assert_eq!(rest, b"EHLO x\r\n");

        let mut block = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&[0x9c, 0x40, 0, 25]);
        let (got, _) = read(&v2(0x1, 0x21, &block)).await;
        assert_eq!(got.unwrap(), Some("[2001:db8::7]:40000".parse().unwrap()));

        // A health check (LOCAL) and an unspecified family name no client.
        assert_eq!(read(&v2(0x0, 0x00, &[])).await.0.unwrap(), None);
        assert_eq!(read(&v2(0x1, 0x00, &[])).await.0.unwrap(), None);
    }

    #[tokio::test]
    async fn malformed_version_2_headers_are_refused() {
        let short = v2(0x1, 0x11, &[192, 0, 2, 7]);
        assert!(read(&short).await.0.is_err(), "a short IPv4 block");
        let mut wrong_version = v2(0x1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        assert!(read(&wrong_version).await.0.is_err(), "version 1 in a version 2 header");
        let mut bad_command = v2(0x1, 0x11, &[0; 12]);
        bad_command[12] = 0x2f;
        assert!(read(&bad_command).await.0.is_err(), "an unknown command");
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(read(&huge).await.0.is_err(), "a 64 KiB address block");
        let truncated = &v2(0x1, 0x11, &[0; 12])[..20];
        assert!(read(truncated).await.0.is_err(), "a header cut short");
    }
}
