//! How the snapshot job takes and keeps AMIs.

use super::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampSettings {
    /// CreateImage without rebooting the appliance (a VPN gateway that reboots
    /// drops every tunnel), at the price of crash-consistent disks.
    pub no_reboot: bool,
    /// How many AMIs this tool created to keep (at least 1).
    pub ami_retention: u32,
}

impl StampSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            no_reboot: env.flag("NO_REBOOT", true)?,
            ami_retention: env.positive(
                "AMI_RETENTION",
                3,
                "AMIs",
                "must be at least 1 (a failover needs an AMI to launch from)",
            )?,
        })
    }
}
