//! Which security group follows Route 53's checker ranges, on which port.

use super::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerSettings {
    /// Security group (id, or name in the VPC) whose ingress follows Route 53's
    /// checker ranges (`CHECKER_SECURITY_GROUP`).
    pub security_group: Option<String>,
    /// `CHECKER_PORT`; unset means the health check's port, else 22.
    pub port: Option<u16>,
}

impl CheckerSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            security_group: env.optional_name("CHECKER_SECURITY_GROUP")?,
            port: env.parsed("CHECKER_PORT", |v| match v.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err("is not a TCP port (1-65535)".to_owned()),
            })?,
        })
    }
}
