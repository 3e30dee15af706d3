//! What names the appliance and where it lives: every job needs these.

use super::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appliance {
    pub instance_name: String,
    pub ami_name: String,
    pub vpc_name: String,
    pub target_region: Option<String>,
    pub health_check_id: Option<String>,
    /// The CloudWatch alarm that watches the appliance (`ALARM_NAME`): it
    /// selects the group for an alarm event, and a reconcile looks at it.
    pub alarm_name: Option<String>,
    /// The group's name when the deployment has `FAILOVER_GROUPS`: its policy
    /// then allows calls only on resources tagged `ec2-failover:group`, which
    /// preflight checks. `None` for a single appliance (Name-tag policy).
    pub group: Option<String>,
    /// SNS topics that invoke this function (`ALARM_TOPIC_ARNS`, set by the
    /// template): the alarm's actions should reach one of them, or the
    /// function itself.
    pub alarm_topic_arns: Vec<String>,
    /// AMIs the operator vouches for (`BASE_AMI_ID`): launched though EC2
    /// does not say they were made of the appliance (registered, copied,
    /// imported, or built by a pipeline from an instance of its own).
    pub base_ami_ids: Vec<String>,
    /// Accounts (ids, or aliases such as `aws-marketplace`) whose published
    /// AMIs named `AMI_NAME*` may be launched (`AMI_OWNERS`).
    pub ami_owners: Vec<String>,
}

impl Appliance {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            instance_name: env.required_name("INSTANCE_NAME")?,
            ami_name: env.required_name("AMI_NAME")?,
            vpc_name: env.required_name("VPC_NAME")?,
            target_region: env.parsed("TARGET_REGION", |v| {
                if is_region_code(v) {
                    Ok(v.to_owned())
                } else {
                    Err("is not a region code like ap-northeast-1".to_owned())
                }
            })?,
            health_check_id: env.optional("HEALTH_CHECK_ID"),
            alarm_name: env.optional("ALARM_NAME"),
            group: None,
            alarm_topic_arns: env.list("ALARM_TOPIC_ARNS", |t| {
                if t.starts_with("arn:") && t.contains(":sns:") {
                    Ok(t.to_owned())
                } else {
                    Err(format!(
                        "{t:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                    ))
                }
            })?,
            base_ami_ids: env.list("BASE_AMI_ID", |id| {
                let hex = id.strip_prefix("ami-").unwrap_or_default();
                if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(id.to_owned())
                } else {
                    Err(format!(
                        "{id:?} is not an AMI id like ami-0123456789abcdef0"
                    ))
                }
            })?,
            ami_owners: env.list("AMI_OWNERS", owner)?,
        })
    }
}

/// An AMI owner: an account id (12 digits) or an alias such as
/// `aws-marketplace` (`self` is the account's own AMIs, found by tag).
fn owner(o: &str) -> Result<String, String> {
    let account = o.len() == 12 && o.chars().all(|c| c.is_ascii_digit());
    let alias =
        !o.is_empty() && o != "self" && o.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    if account || alias {
        Ok(o.to_owned())
    } else {
        Err(format!(
            "{o:?} is not an account id (12 digits) or an owner alias like aws-marketplace"
        ))
    }
}

/// `us-east-1`, `ap-northeast-1`, `us-gov-west-1`, `eu-central-2`...
pub(super) fn is_region_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
}
