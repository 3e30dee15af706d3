//! Settings: the function's environment variables, validated once at start-up.
//!
//! Raw strings become typed settings here, before anything talks to AWS, so a
//! typo in a CIDR or a flag fails the cold start with a message naming the
//! variable and the value, instead of failing halfway through a failover.
//! Each job's settings are read and validated by their own module.

mod appliance;
mod checker;
mod dns;
mod env;
mod failover;
mod lock;
mod notify;
mod stamp;

pub use appliance::Appliance;
pub use checker::CheckerSettings;
pub use dns::{DnsAddress, DnsRecord};
pub use env::Env;
pub use failover::{FailoverSettings, Standby};
pub use lock::{LockSettings, lock_settings};
pub use notify::{NotifySettings, notify_settings};
pub use stamp::StampSettings;

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

/// Validated configuration of one protected appliance, by job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub appliance: Appliance,
    pub failover: FailoverSettings,
    pub stamp: StampSettings,
    pub checker: CheckerSettings,
    /// The DNS record that follows the replacement, when configured.
    pub dns: Option<DnsRecord>,
    /// Report what would change instead of changing it (every job).
    pub dry_run: bool,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&get);
        Ok(Settings {
            appliance: Appliance::from_env(&env)?,
            failover: FailoverSettings::from_env(&env)?,
            stamp: StampSettings::from_env(&env)?,
            checker: CheckerSettings::from_env(&env)?,
            dns: dns::dns_record(&env)?,
            dry_run: env.flag("DRY_RUN", false)?,
        })
    }
}

/// Where the alarms live (`ALARM_REGION`, default `us-east-1`: Route 53's
/// health-check metrics exist only there). One per deployment, read once.
pub fn alarm_region(get: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    const DEFAULT: &str = "us-east-1";
    let env = Env::new(&get);
    match env.optional("ALARM_REGION") {
        None => Ok(DEFAULT.to_owned()),
        Some(r) if appliance::is_region_code(&r) => Ok(r),
        Some(r) => Err(ConfigError::new(
            "ALARM_REGION",
            &r,
            "is not a region code like us-east-1",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;
    use std::time::Duration;

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
    fn names_with_ec2_filter_wildcards_are_refused() {
        for var in [
            "INSTANCE_NAME",
            "AMI_NAME",
            "VPC_NAME",
            "SUBNET_NAME",
            "ROUTE_TABLE_NAME",
            "SECURITY_GROUP_NAME",
            "CHECKER_SECURITY_GROUP",
        ] {
            for bad in ["vpn*", "vpn-?"] {
                let e = settings(&[(var, bad)]).unwrap_err();
                assert_eq!((e.variable, e.value.as_str()), (var, bad));
                assert!(e.problem.contains("wildcard"), "{var}: {}", e.problem);
            }
        }
        let e = settings(&[("SUBNET_NAMES", "public,lan*")]).unwrap_err();
        assert_eq!(e.variable, "SUBNET_NAMES");
        assert!(settings(&[("INSTANCE_NAME", "vpn-gw.1 (tokyo)")]).is_ok());
    }

    #[test]
    fn ami_owners_are_account_ids_or_aliases_and_base_amis_are_ami_ids() {
        let s = settings(&[
            ("AMI_OWNERS", "aws-marketplace, 123456789012"),
            ("BASE_AMI_ID", "ami-0123456789abcdef0"),
        ])
        .unwrap();
        assert_eq!(s.appliance.ami_owners, ["aws-marketplace", "123456789012"]);
        assert_eq!(s.appliance.base_ami_ids, ["ami-0123456789abcdef0"]);
        for bad in ["self", "12345", "AWS", "aws marketplace"] {
            let e = settings(&[("AMI_OWNERS", bad)]).unwrap_err();
            assert_eq!(e.variable, "AMI_OWNERS", "{bad}");
        }
        let e = settings(&[("BASE_AMI_ID", "sophos")]).unwrap_err();
        assert_eq!(e.variable, "BASE_AMI_ID");
    }

    #[test]
    fn a_home_az_must_be_an_az_name_and_guardrails_are_a_list() {
        let s = settings(&[
            ("HOME_AZ", "ap-northeast-1a"),
            ("DRILL_GUARDRAIL_ALARMS", "orders-5xx, vpn-sessions"),
        ])
        .unwrap();
        assert_eq!(s.failover.home_az.as_deref(), Some("ap-northeast-1a"));
        assert_eq!(
            s.failover.drill_guardrail_alarms,
            ["orders-5xx", "vpn-sessions"]
        );
        for bad in ["ap-northeast-1", "AP-NORTHEAST-1A", "1a", "ap northeast 1a"] {
            let e = settings(&[("HOME_AZ", bad)]).unwrap_err();
            assert_eq!(e.variable, "HOME_AZ", "{bad}");
        }
        assert_eq!(settings(&[]).unwrap().failover.home_az, None);
    }

    #[test]
    fn defaults_follow_design() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.failover.route_table_name, "public");
        assert_eq!(s.failover.cooldown, Duration::from_secs(15 * 60));
        assert!(!s.dry_run);
        assert!(s.failover.route_cidrs.is_empty());
        assert_eq!(s.failover.floating_ip, None);
        assert_eq!(s.failover.max_failovers, 3);
        assert_eq!(s.failover.failover_window, Duration::from_secs(60 * 60));
        assert!(s.failover.fallback_instance_types.is_empty());
        assert!(s.stamp.no_reboot);
        assert_eq!(s.stamp.ami_retention, 3);
        assert_eq!(s.checker.security_group, None);
        assert_eq!(s.checker.port, None);
        assert_eq!(s.dns, None);
    }

    #[test]
    fn snapshot_settings_parse() {
        let s = settings(&[("NO_REBOOT", "false"), ("AMI_RETENTION", "7")]).unwrap();
        assert!(!s.stamp.no_reboot);
        assert_eq!(s.stamp.ami_retention, 7);
        let s = settings(&[("NO_REBOOT", "On"), ("AMI_RETENTION", "1")]).unwrap();
        assert!(s.stamp.no_reboot);
        assert_eq!(s.stamp.ami_retention, 1);
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
        assert_eq!(s.checker.security_group.as_deref(), Some("bastion"));
        assert_eq!(s.checker.port, Some(443));
    }

    #[test]
    fn fallback_types_keep_their_order() {
        let s = settings(&[("FALLBACK_INSTANCE_TYPES", "t3.medium, m5.large,t3.medium")]).unwrap();
        assert_eq!(
            s.failover.fallback_instance_types,
            ["t3.medium", "m5.large"]
        );
    }

    #[test]
    fn missing_required_variable_is_named() {
        let e = Settings::from_lookup(|_| None).unwrap_err();
        assert_eq!(e.variable, "INSTANCE_NAME");
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
        let printed: Vec<String> = s
            .failover
            .route_cidrs
            .iter()
            .map(ToString::to_string)
            .collect();
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
        assert_eq!(s.failover.floating_ip, Some(Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!(s.failover.cooldown, Duration::ZERO);
        assert!(s.dry_run);
        assert_eq!(s.appliance.target_region.as_deref(), Some("ap-northeast-1"));
        assert_eq!(s.failover.route_table_name, "private");
        assert_eq!(s.failover.security_group_name, None);
    }
}
