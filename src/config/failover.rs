//! How the failover moves the appliance: where to, what follows it, and
//! how often it may.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{ConfigError, Env};
use crate::cloud::Cidr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverSettings {
    pub subnet_name: String,
    /// The subnet name of each network interface, by device index
    /// (`SUBNET_NAMES`, e.g. `public,private` for a WAN and a LAN leg); the
    /// first is `SUBNET_NAME`, and alone by default.
    pub subnet_names: Vec<String>,
    pub route_table_name: String,
    pub route_cidrs: Vec<Cidr>,
    pub floating_ip: Option<Ipv4Addr>,
    pub security_group_name: Option<String>,
    pub cooldown: Duration,
    /// At most this many failovers within `failover_window`; then refuse and page.
    pub max_failovers: u32,
    pub failover_window: Duration,
    /// Instance types to try, in order, when no candidate AZ has capacity for
    /// the failed instance's own type.
    pub fallback_instance_types: Vec<String>,
    /// KMS keys the function is granted for encrypted AMIs and the default
    /// EBS key (`KMS_KEY_ARNS`, the template's `KmsKeyArns`); a preflight
    /// checks both against them.
    pub kms_key_arns: Vec<String>,
    /// What stands by for a failover (`STANDBY`): nothing, a stopped or a
    /// running second instance in another AZ.
    pub standby: Standby,
    /// Where the appliance lives when all is well (`HOME_AZ`): a planned
    /// fail-back moves it there.
    pub home_az: Option<String>,
    /// Alarms that must not be in ALARM for a drill to run
    /// (`DRILL_GUARDRAIL_ALARMS`): what the business watches.
    pub drill_guardrail_alarms: Vec<String>,
}

/// `STANDBY`: how much is kept ready for a failover, cost against speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Standby {
    /// Launch a replacement from the newest AMI at failover time.
    #[default]
    Cold,
    /// A stopped standby in another AZ: a failover starts it.
    Warm,
    /// A running standby in another AZ: a failover only moves the network.
    Hot,
}

impl Standby {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Warm => "warm",
            Self::Hot => "hot",
        }
    }

    fn parse(v: &str) -> Result<Self, String> {
        match v {
            "cold" => Ok(Self::Cold),
            "warm" => Ok(Self::Warm),
            "hot" => Ok(Self::Hot),
            _ => Err("must be cold, warm or hot".to_owned()),
        }
    }
}

impl FailoverSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let subnet_name = env.required_name("SUBNET_NAME")?;
        let subnet_names = subnet_names(env, &subnet_name)?;
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        Ok(Self {
            route_table_name: env
                .optional_name("ROUTE_TABLE_NAME")?
                .unwrap_or_else(|| subnet_name.clone()),
            subnet_name,
            subnet_names,
            route_cidrs: env.list("ROUTE_CIDRS", str::parse::<Cidr>)?,
            floating_ip: env.parsed("FLOATING_IP", |v| {
                v.parse::<Ipv4Addr>()
                    .map_err(|_| "is not an IPv4 address (an Elastic IP)".to_owned())
            })?,
            security_group_name: env.optional_name("SECURITY_GROUP_NAME")?,
            cooldown: minutes(env.whole("COOLDOWN_MINUTES", 15, "minutes")?),
            max_failovers: env.positive(
                "MAX_FAILOVERS",
                3,
                "failovers",
                "must be at least 1 (use DRY_RUN=true to disable failovers)",
            )?,
            failover_window: minutes(env.whole("FAILOVER_WINDOW_MINUTES", 60, "minutes")?),
            fallback_instance_types: env.list("FALLBACK_INSTANCE_TYPES", |t| {
                if is_instance_type(t) {
                    Ok(t.to_owned())
                } else {
                    Err(format!("{t:?} is not an instance type like t3.small"))
                }
            })?,
            kms_key_arns: env.list("KMS_KEY_ARNS", |k| {
                if k.starts_with("arn:") && k.contains(":kms:") && k.contains(":key/") {
                    Ok(k.to_owned())
                } else {
                    Err(format!(
                        "{k:?} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"
                    ))
                }
            })?,
            standby: env.parsed("STANDBY", Standby::parse)?.unwrap_or_default(),
            home_az: env.parsed("HOME_AZ", availability_zone)?,
            drill_guardrail_alarms: env.list("DRILL_GUARDRAIL_ALARMS", |v| Ok(v.to_owned()))?,
        })
    }
}

/// `ap-northeast-1a`, `us-east-1-bos-1a` (a Local Zone): a region, then
/// the zone's letter.
fn availability_zone(v: &str) -> Result<String, String> {
    let shaped = v.contains('-')
        && v.ends_with(|c: char| c.is_ascii_lowercase())
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if shaped {
        Ok(v.to_owned())
    } else {
        Err("is not an Availability Zone name like ap-northeast-1a".to_owned())
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

/// `SUBNET_NAMES`: device 0's name must be `SUBNET_NAME`, which the policy
/// and the rest of the configuration use for the primary leg.
fn subnet_names(env: &Env<'_>, subnet_name: &str) -> Result<Vec<String>, ConfigError> {
    let names = env.list("SUBNET_NAMES", super::env::exact_name)?;
    match names.first() {
        None => Ok(vec![subnet_name.to_owned()]),
        Some(first) if first == subnet_name => Ok(names),
        Some(_) => Err(ConfigError::new(
            "SUBNET_NAMES",
            &names.join(","),
            format!("must start with SUBNET_NAME ({subnet_name}), the primary interface's subnet"),
        )),
    }
}
