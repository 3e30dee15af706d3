//! A route or security-group destination block, as EC2 reports it.
//!
//! It lives beside the cloud types because EC2's answers carry it (routes,
//! ingress rules) as much as the configuration does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 destination block, always in canonical form
/// (the network address, IPv6 compressed and lowercase), as EC2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cidr {
    V4 { network: Ipv4Addr, prefix: u8 },
    V6 { network: Ipv6Addr, prefix: u8 },
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR block (expected ADDRESS/PREFIX)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        match addr {
            IpAddr::V4(a) => {
                if prefix > 32 {
                    return Err(format!("prefix /{prefix} is longer than 32 for IPv4"));
                }
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                let network = Ipv4Addr::from(u32::from(a) & mask);
                if network != a {
                    return Err(format!(
                        "{s} has host bits set; did you mean {network}/{prefix}?"
                    ));
                }
                Ok(Cidr::V4 { network, prefix })
            }
            IpAddr::V6(a) => {
                if prefix > 128 {
                    return Err(format!("prefix /{prefix} is longer than 128 for IPv6"));
                }
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                let network = Ipv6Addr::from(u128::from(a) & mask);
                if network != a {
                    return Err(format!(
                        "{s} has host bits set; did you mean {network}/{prefix}?"
                    ));
                }
                Ok(Cidr::V6 { network, prefix })
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cidr::V4 { network, prefix } => write!(f, "{network}/{prefix}"),
            Cidr::V6 { network, prefix } => write!(f, "{network}/{prefix}"),
        }
    }
}
