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
    let optional = |k: &str| env.optional(k);
    let ttl = optional("DNS_TTL")
        .map(|v| match v.parse::<i64>() {
            // Route 53 accepts 0..=2147483647 seconds.
            Ok(t) if (0..=i64::from(i32::MAX)).contains(&t) => Ok(t),
            _ => Err(ConfigError::new(
                "DNS_TTL",
                &v,
                "is not a TTL in seconds (0-2147483647)",
            )),
        })
        .transpose()?
        .unwrap_or(60);
    let address = optional("DNS_ADDRESS")
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "private" => Ok(DnsAddress::Private),
            "public" => Ok(DnsAddress::Public),
            _ => Err(ConfigError::new(
                "DNS_ADDRESS",
                &v,
                "is not private or public",
            )),
        })
        .transpose()?
        .unwrap_or(DnsAddress::Private);
    match (optional("DNS_ZONE_ID"), optional("DNS_RECORD_NAME")) {
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
        (Some(zone), Some(name)) => {
            // The console and CloudFormation both hand out `/hostedzone/Z...`.
            let zone_id = zone.trim_start_matches("/hostedzone/").to_owned();
            if zone_id.is_empty() || !zone_id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConfigError::new(
                    "DNS_ZONE_ID",
                    &zone,
                    "is not a hosted zone id like Z0123456789ABC",
                ));
            }
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
                    &name,
                    "is not a DNS name like ssh.example.com",
                ));
            }
            Ok(Some(DnsRecord {
                zone_id,
                name: format!("{}.", bare.to_ascii_lowercase()),
                ttl,
                address,
            }))
        }
    }
}
