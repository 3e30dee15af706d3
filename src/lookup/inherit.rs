//! What a replacement inherits beyond DescribeInstances: the failed instance's
//! user data (DescribeInstanceAttribute) and, for a burstable type, its CPU
//! credit option (DescribeInstanceCreditSpecifications).
//!
//! Read only once a new launch is decided, not in the look's round: the failed
//! instance is known only after the assessment, and a run that stands down
//! (Route 53 sees the appliance healthy) or resumes should not pay for them.

use crate::cloud::{Cloud, CloudError, Instance, is_burstable};
use crate::error::FailoverError;
use crate::step::Step;

/// What a replacement inherits that DescribeInstances does not tell. Read
/// only before a new launch: a resumed incident or a stood-down one never pays
/// for these calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherited {
    pub user_data: UserData,
    /// `standard` or `unlimited` (burstable types only).
    pub cpu_credits: Option<String>,
}

/// The failed instance's user data, as far as EC2 still tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UserData {
    #[default]
    Absent,
    /// Base64, as EC2 keeps it and RunInstances takes it.
    Base64(String),
    /// EC2 no longer knows the instance: the replacement launches without,
    /// and the report says why.
    Unknown(String),
}

impl UserData {
    /// The user data a launch passes on, when it is known.
    pub fn base64(&self) -> Option<String> {
        match self {
            UserData::Base64(b) => Some(b.clone()),
            UserData::Absent | UserData::Unknown(_) => None,
        }
    }
}

/// EC2's answer for an instance it no longer knows.
const NOT_FOUND: &str = "InvalidInstanceID.NotFound";

/// Reads both concurrently. An instance EC2 no longer knows has unknown user
/// data, which must not block its failover (the report says it was not
/// copied); any other error stops the launch before anything changed.
pub async fn read<C: Cloud>(cloud: &C, failed: &Instance) -> Result<Inherited, FailoverError> {
    let id = failed.id.as_str();
    let (user_data, credits) = tokio::join!(cloud.user_data(id), async {
        if is_burstable(&failed.instance_type) {
            cloud.cpu_credits(id).await
        } else {
            Ok(None)
        }
    });
    Ok(Inherited {
        user_data: user_data_of(id, user_data)?,
        cpu_credits: match credits {
            Ok(c) => c,
            // Gone instance: the type's default is all that is left.
            Err(e) if e.code() == Some(NOT_FOUND) => None,
            Err(e) => {
                return Err(FailoverError::during(
                    Step::Launch,
                    format!("CPU credits of {id}"),
                )(e));
            }
        },
    })
}

fn user_data_of(
    id: &str,
    answer: Result<Option<String>, CloudError>,
) -> Result<UserData, FailoverError> {
    match answer {
        Ok(Some(b)) => Ok(UserData::Base64(b)),
        Ok(None) => Ok(UserData::Absent),
        Err(e) if e.code() == Some(NOT_FOUND) => {
            let why = format!(
                "EC2 no longer knows {id} ({NOT_FOUND}); the replacement launches without user data"
            );
            tracing::warn!(instance = id, "{why}");
            Ok(UserData::Unknown(why))
        }
        Err(e) => Err(FailoverError::during(
            Step::Launch,
            format!("user data of {id}"),
        )(e)),
    }
}
