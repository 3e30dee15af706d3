//! The A record that follows the appliance (`DNS_ZONE_ID` + `DNS_RECORD_NAME`).

use super::{ConfigError, Env};

/// Which address of the replacement the DNS record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsAddress {
    Private,
    /// `FLOATING_IP` when configured (it moves to the replacement), else the
    /// replacement's own public IP.
    Public,
}

impl DnsAddress {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
        }
    }
}

/// An A record that follows the appliance (`DNS_ZONE_ID` + `DNS_RECORD_NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Hosted zone id without the `/hostedzone/` prefix.
    pub zone_id: String,
    /// Fully qualified, with the trailing dot, as Route 53 lists it.
    pub name: String,
    pub ttl: i64,
    pub address: DnsAddress,
}

/// `DNS_ZONE_ID` and `DNS_RECORD_NAME` come together or not at all: one without
/// the other is a half-done setup that would silently leave DNS behind.
pub fn dns_record(env: &Env<'_>) -> Result<Option<DnsRecord>, ConfigError> {
    let ttl = ttl(env.optional("DNS_TTL"))?;
    let address = address(env.optional("DNS_ADDRESS"))?;
    match (env.optional("DNS_ZONE_ID"), env.optional("DNS_RECORD_NAME")) {
        (None, None) => Ok(None),
        (Some(zone), None) => Err(ConfigError::new(
            "DNS_RECORD_NAME",
            "",
            format!("must be set too when DNS_ZONE_ID={zone} is"),
        )),
        (None, Some(name)) => Err(ConfigError::new(
            "DNS_ZONE_ID",
            "",
            format!("must be set too when DNS_RECORD_NAME={name} is"),
        )),
        (Some(zone), Some(name)) => Ok(Some(DnsRecord {
            zone_id: zone_id(&zone)?,
            name: record_name(&name)?,
            ttl,
            address,
        })),
    }
}

/// `DNS_TTL`, 60 s unless set.
fn ttl(value: Option<String>) -> Result<i64, ConfigError> {
    value
        .map(|v| match v.parse::<i64>() {
            // Route 53 accepts 0..=2147483647 seconds.
            Ok(t) if (0..=i64::from(i32::MAX)).contains(&t) => Ok(t),
            _ => Err(ConfigError::new(
                "DNS_TTL",
                &v,
                "is not a TTL in seconds (0-2147483647)",
            )),
        })
        .transpose()
        .map(|t| t.unwrap_or(60))
}

/// `DNS_ADDRESS`, the private address unless set.
fn address(value: Option<String>) -> Result<DnsAddress, ConfigError> {
    value
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "private" => Ok(DnsAddress::Private),
            "public" => Ok(DnsAddress::Public),
            _ => Err(ConfigError::new(
                "DNS_ADDRESS",
                &v,
                "is not private or public",
            )),
        })
        .transpose()
        .map(|a| a.unwrap_or(DnsAddress::Private))
}

/// `DNS_ZONE_ID` without the `/hostedzone/` prefix the console and
/// CloudFormation both hand out.
fn zone_id(zone: &str) -> Result<String, ConfigError> {
    let zone_id = zone.trim_start_matches("/hostedzone/").to_owned();
    if zone_id.is_empty() || !zone_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(
            "DNS_ZONE_ID",
            zone,
            "is not a hosted zone id like Z0123456789ABC",
        ));
    }
    Ok(zone_id)
}

/// `DNS_RECORD_NAME` as Route 53 returns it: lower case, with the final dot.
fn record_name(name: &str) -> Result<String, ConfigError> {
    let bare = name.trim_end_matches('.');
    let labels_ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !labels_ok {
        return Err(ConfigError::new(
            "DNS_RECORD_NAME",
            name,
            "is not a DNS name like ssh.example.com",
        ));
    }
    Ok(format!("{}.", bare.to_ascii_lowercase()))
}
