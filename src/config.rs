//! Settings: the function's environment variables, validated once at start-up.
//!
//! Raw strings become typed settings here, before anything talks to AWS, so a
//! typo in a CIDR or a flag fails the cold start with a message naming the
//! variable and the value, instead of failing halfway through a failover.
//! Empty values count as unset: SAM passes optional parameters as "".

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cloud::Cidr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}={value:?} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, value: &str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            value: value.to_owned(),
            problem: problem.into(),
        }
    }
}

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

/// Validated configuration of one protected appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub instance_name: String,
    pub ami_name: String,
    pub vpc_name: String,
    pub subnet_name: String,
    pub route_table_name: String,
    pub route_cidrs: Vec<Cidr>,
    pub floating_ip: Option<Ipv4Addr>,
    pub security_group_name: Option<String>,
    pub target_region: Option<String>,
    pub health_check_id: Option<String>,
    pub cooldown: Duration,
    /// At most this many failovers within `failover_window`; then refuse and page.
    pub max_failovers: u32,
    pub failover_window: Duration,
    /// Instance types to try, in order, when no candidate AZ has capacity for
    /// the failed instance's own type.
    pub fallback_instance_types: Vec<String>,
    pub dry_run: bool,
    /// CreateImage without rebooting the appliance (a VPN gateway that reboots
    /// drops every tunnel), at the price of crash-consistent disks.
    pub no_reboot: bool,
    /// How many AMIs this tool created to keep (at least 1).
    pub ami_retention: u32,
    /// Security group (id, or name in the VPC) whose ingress follows Route 53's
    /// checker ranges (`CHECKER_SECURITY_GROUP`).
    pub checker_security_group: Option<String>,
    /// `CHECKER_PORT`; unset means the health check's port, else 22.
    pub checker_port: Option<u16>,
    /// The DNS record that follows the replacement, when configured.
    pub dns: Option<DnsRecord>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let optional = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |k: &'static str| {
            optional(k).ok_or_else(|| ConfigError::new(k, "", "is required but not set"))
        };

        let subnet_name = required("SUBNET_NAME")?;
        let route_cidrs = match optional("ROUTE_CIDRS") {
            None => Vec::new(),
            Some(raw) => {
                let mut cidrs: Vec<Cidr> = Vec::new();
                for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let cidr = part
                        .parse::<Cidr>()
                        .map_err(|p| ConfigError::new("ROUTE_CIDRS", &raw, p))?;
                    if !cidrs.contains(&cidr) {
                        cidrs.push(cidr);
                    }
                }
                cidrs
            }
        };
        let floating_ip = optional("FLOATING_IP")
            .map(|v| {
                v.parse::<Ipv4Addr>().map_err(|_| {
                    ConfigError::new("FLOATING_IP", &v, "is not an IPv4 address (an Elastic IP)")
                })
            })
            .transpose()?;
        let target_region = optional("TARGET_REGION")
            .map(|v| {
                if is_region_code(&v) {
                    Ok(v)
                } else {
                    Err(ConfigError::new(
                        "TARGET_REGION",
                        &v,
                        "is not a region code like ap-northeast-1",
                    ))
                }
            })
            .transpose()?;
        let cooldown_minutes = optional("COOLDOWN_MINUTES")
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ConfigError::new("COOLDOWN_MINUTES", &v, "is not a whole number of minutes")
                })
            })
            .transpose()?
            .unwrap_or(15);
        let whole = |k: &'static str, default: u32, unit: &str| {
            optional(k)
                .map(|v| {
                    v.parse::<u32>().map_err(|_| {
                        ConfigError::new(k, &v, format!("is not a whole number of {unit}"))
                    })
                })
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        let max_failovers = whole("MAX_FAILOVERS", 3, "failovers")?;
        if max_failovers == 0 {
            return Err(ConfigError::new(
                "MAX_FAILOVERS",
                "0",
                "must be at least 1 (use DRY_RUN=true to disable failovers)",
            ));
        }
        let window_minutes = whole("FAILOVER_WINDOW_MINUTES", 60, "minutes")?;
        let fallback_instance_types = match optional("FALLBACK_INSTANCE_TYPES") {
            None => Vec::new(),
            Some(raw) => {
                let mut types: Vec<String> = Vec::new();
                for t in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !is_instance_type(t) {
                        return Err(ConfigError::new(
                            "FALLBACK_INSTANCE_TYPES",
                            &raw,
                            format!("{t:?} is not an instance type like t3.small"),
                        ));
                    }
                    if !types.iter().any(|x| x == t) {
                        types.push(t.to_owned());
                    }
                }
                types
            }
        };
        let flag = |k: &'static str, default: bool| {
            optional(k)
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(ConfigError::new(k, &v, "is not true or false")),
                })
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        let dry_run = flag("DRY_RUN", false)?;
        let no_reboot = flag("NO_REBOOT", true)?;
        let ami_retention = whole("AMI_RETENTION", 3, "AMIs")?;
        if ami_retention == 0 {
            return Err(ConfigError::new(
                "AMI_RETENTION",
                "0",
                "must be at least 1 (a failover needs an AMI to launch from)",
            ));
        }

        let checker_port = optional("CHECKER_PORT")
            .map(|v| match v.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(ConfigError::new(
                    "CHECKER_PORT",
                    &v,
                    "is not a TCP port (1-65535)",
                )),
            })
            .transpose()?;
        let dns = dns_record(&optional)?;

        Ok(Settings {
            instance_name: required("INSTANCE_NAME")?,
            ami_name: required("AMI_NAME")?,
            vpc_name: required("VPC_NAME")?,
            route_table_name: optional("ROUTE_TABLE_NAME").unwrap_or_else(|| subnet_name.clone()),
            subnet_name,
            route_cidrs,
            floating_ip,
            security_group_name: optional("SECURITY_GROUP_NAME"),
            target_region,
            health_check_id: optional("HEALTH_CHECK_ID"),
            cooldown: Duration::from_secs(u64::from(cooldown_minutes) * 60),
            max_failovers,
            failover_window: Duration::from_secs(u64::from(window_minutes) * 60),
            fallback_instance_types,
            dry_run,
            no_reboot,
            ami_retention,
            checker_security_group: optional("CHECKER_SECURITY_GROUP"),
            checker_port,
            dns,
        })
    }
}

/// `DNS_ZONE_ID` and `DNS_RECORD_NAME` come together or not at all: one without
/// the other is a half-done setup that would silently leave DNS behind.
fn dns_record(
    optional: &impl Fn(&str) -> Option<String>,
) -> Result<Option<DnsRecord>, ConfigError> {
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

/// `t3.small`, `c6gn.16xlarge`, `u-6tb1.metal`.
fn is_instance_type(s: &str) -> bool {
    s.split_once('.').is_some_and(|(family, size)| {
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        ok(family) && ok(size)
    })
}

/// `us-east-1`, `ap-northeast-1`, `us-gov-west-1`, `eu-central-2`...
fn is_region_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("INSTANCE_NAME", "sophos"),
            ("AMI_NAME", "sophos"),
            ("VPC_NAME", "my-vpc"),
            ("SUBNET_NAME", "public"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in pairs {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_follow_design() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.route_table_name, "public");
        assert_eq!(s.cooldown, Duration::from_secs(15 * 60));
        assert!(!s.dry_run);
        assert!(s.route_cidrs.is_empty());
        assert_eq!(s.floating_ip, None);
        assert_eq!(s.max_failovers, 3);
        assert_eq!(s.failover_window, Duration::from_secs(60 * 60));
        assert!(s.fallback_instance_types.is_empty());
        assert!(s.no_reboot);
        assert_eq!(s.ami_retention, 3);
        assert_eq!(s.checker_security_group, None);
        assert_eq!(s.checker_port, None);
        assert_eq!(s.dns, None);
    }

    #[test]
    fn snapshot_settings_parse() {
        let s = settings(&[("NO_REBOOT", "false"), ("AMI_RETENTION", "7")]).unwrap();
        assert!(!s.no_reboot);
        assert_eq!(s.ami_retention, 7);
        let s = settings(&[("NO_REBOOT", "On"), ("AMI_RETENTION", "1")]).unwrap();
        assert!(s.no_reboot);
        assert_eq!(s.ami_retention, 1);
    }

    #[test]
    fn dns_record_needs_zone_and_name_together() {
        let s = settings(&[
            ("DNS_ZONE_ID", "/hostedzone/Z0123ABC"),
            ("DNS_RECORD_NAME", "SSH.Example.com"),
        ])
        .unwrap();
        assert_eq!(
            s.dns,
            Some(DnsRecord {
                zone_id: "Z0123ABC".into(),
                name: "ssh.example.com.".into(),
                ttl: 60,
                address: DnsAddress::Private,
            })
        );
        let s = settings(&[
            ("DNS_ZONE_ID", "Z0123ABC"),
            ("DNS_RECORD_NAME", "ssh.example.com."),
            ("DNS_TTL", "300"),
            ("DNS_ADDRESS", "Public"),
        ])
        .unwrap();
        let dns = s.dns.unwrap();
        assert_eq!((dns.ttl, dns.address), (300, DnsAddress::Public));
        let e = settings(&[("DNS_ZONE_ID", "Z0123ABC")]).unwrap_err();
        assert_eq!(e.variable, "DNS_RECORD_NAME");
        let e = settings(&[("DNS_RECORD_NAME", "ssh.example.com")]).unwrap_err();
        assert_eq!(e.variable, "DNS_ZONE_ID");
        // TTL and address are checked even without a record, so a typo is caught early.
        assert_eq!(
            settings(&[("DNS_TTL", "1m")]).unwrap_err().variable,
            "DNS_TTL"
        );
    }

    #[test]
    fn checker_settings_parse() {
        let s = settings(&[
            ("CHECKER_SECURITY_GROUP", "bastion"),
            ("CHECKER_PORT", "443"),
        ])
        .unwrap();
        assert_eq!(s.checker_security_group.as_deref(), Some("bastion"));
        assert_eq!(s.checker_port, Some(443));
    }

    #[test]
    fn fallback_types_keep_their_order() {
        let s = settings(&[("FALLBACK_INSTANCE_TYPES", "t3.medium, m5.large,t3.medium")]).unwrap();
        assert_eq!(s.fallback_instance_types, ["t3.medium", "m5.large"]);
    }

    #[test]
    fn missing_required_variable_is_named() {
        let e = Settings::from_lookup(|_| None).unwrap_err();
        assert_eq!(e.variable, "SUBNET_NAME");
        let e = settings(&[("INSTANCE_NAME", "  ")]).unwrap_err();
        assert_eq!(e.variable, "INSTANCE_NAME");
        assert!(e.to_string().contains("INSTANCE_NAME"), "{e}");
    }

    #[test]
    fn route_cidrs_are_parsed_canonical_and_deduplicated() {
        let s = settings(&[(
            "ROUTE_CIDRS",
            "10.242.2.0/24, 2001:DB8:0:0::/64,10.242.2.0/24",
        )])
        .unwrap();
        let printed: Vec<String> = s.route_cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["10.242.2.0/24", "2001:db8::/64"]);
    }

    #[test]
    fn bad_values_name_variable_and_value() {
        let e = settings(&[("ROUTE_CIDRS", "10.242.2.1/24")]).unwrap_err();
        assert_eq!(e.variable, "ROUTE_CIDRS");
        assert!(e.problem.contains("did you mean 10.242.2.0/24"), "{e}");
        for (var, val) in [
            ("ROUTE_CIDRS", "10.0.0.0/33"),
            ("ROUTE_CIDRS", "vpn"),
            ("FLOATING_IP", "54.1.2"),
            ("COOLDOWN_MINUTES", "-3"),
            ("DRY_RUN", "maybe"),
            ("TARGET_REGION", "Tokyo"),
            ("MAX_FAILOVERS", "0"),
            ("MAX_FAILOVERS", "three"),
            ("FAILOVER_WINDOW_MINUTES", "1h"),
            ("FALLBACK_INSTANCE_TYPES", "t3.large, T3 Large"),
            ("NO_REBOOT", "sometimes"),
            ("AMI_RETENTION", "0"),
            ("AMI_RETENTION", "-1"),
            ("AMI_RETENTION", "2.5"),
            ("CHECKER_PORT", "0"),
            ("CHECKER_PORT", "ssh"),
            ("DNS_TTL", "-1"),
            ("DNS_ADDRESS", "elastic"),
        ] {
            let e = settings(&[(var, val)]).unwrap_err();
            assert_eq!(e.variable, var);
            assert_eq!(e.value, val);
            assert!(e.to_string().contains(val), "{e}");
        }
    }

    #[test]
    fn optional_values_parse() {
        let s = settings(&[
            ("FLOATING_IP", "203.0.113.10"),
            ("COOLDOWN_MINUTES", "0"),
            ("DRY_RUN", "TRUE"),
            ("TARGET_REGION", "ap-northeast-1"),
            ("ROUTE_TABLE_NAME", "private"),
            ("SECURITY_GROUP_NAME", ""),
        ])
        .unwrap();
        assert_eq!(s.floating_ip, Some(Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!(s.cooldown, Duration::ZERO);
        assert!(s.dry_run);
        assert_eq!(s.target_region.as_deref(), Some("ap-northeast-1"));
        assert_eq!(s.route_table_name, "private");
        assert_eq!(s.security_group_name, None);
    }
}
