//! Where the function tells people what it did (`NOTIFICATION_TOPIC_ARN`, an
//! SNS topic, for mail) and machines (`EVENT_BUS`, EventBridge, for chat and
//! paging). One per deployment, like `LOCK_TABLE`: every group tells the same
//! topic and bus, each notice naming its group.

use super::{ConfigError, Env};

/// EventBridge's bus every account has.
const DEFAULT_BUS: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// The SNS topic notices are published to (`None`: no mail).
    pub topic_arn: Option<String>,
    /// The EventBridge bus the events go to (`None`: `EVENT_BUS=off`).
    pub event_bus: Option<String>,
}

impl NotifySettings {
    /// True when a notice has somewhere to go.
    pub fn any(&self) -> bool {
        self.topic_arn.is_some() || self.event_bus.is_some()
    }
}

/// `NOTIFICATION_TOPIC_ARN` (optional) and `EVENT_BUS` (default `default`;
/// `off` sends no events).
pub fn notify_settings(
    get: impl Fn(&str) -> Option<String>,
) -> Result<NotifySettings, ConfigError> {
    let env = Env::new(&get);
    let topic_arn = env.optional("NOTIFICATION_TOPIC_ARN");
    if let Some(arn) = &topic_arn {
        // arn:aws:sns:<region>:<account>:<name>, in any partition.
        let parts: Vec<&str> = arn.split(':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "sns"
            && parts[4].len() == 12
            && parts[4].chars().all(|c| c.is_ascii_digit())
            && !parts[5].is_empty();
        if !valid {
            return Err(ConfigError::new(
                "NOTIFICATION_TOPIC_ARN",
                arn,
                "is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)",
            ));
        }
    }
    let event_bus = match env.optional("EVENT_BUS") {
        None => Some(DEFAULT_BUS.to_owned()),
        Some(off) if off.eq_ignore_ascii_case("off") => None,
        // A name or ARN: 1 to 256 of letters, digits, `.`, `-`, `_`, `/`, `:`.
        Some(bus)
            if bus.len() <= 256
                && bus.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':')
                }) =>
        {
            Some(bus)
        }
        Some(bad) => {
            return Err(ConfigError::new(
                "EVENT_BUS",
                &bad,
                "is not an EventBridge bus name or ARN (or off)",
            ));
        }
    };
    Ok(NotifySettings {
        topic_arn,
        event_bus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<NotifySettings, ConfigError> {
        notify_settings(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_topic_and_bus_are_read_and_bad_ones_named() {
        let none = read(&[]).unwrap();
        assert_eq!(none.topic_arn, None);
        assert_eq!(none.event_bus.as_deref(), Some("default"));
        let arn = "arn:aws:sns:ap-northeast-1:123456789012:ec2-failover";
        let both = read(&[("NOTIFICATION_TOPIC_ARN", arn), ("EVENT_BUS", "off")]).unwrap();
        assert_eq!(both.topic_arn.as_deref(), Some(arn));
        assert_eq!(both.event_bus, None);
        assert!(both.any());
        assert!(!read(&[("EVENT_BUS", "OFF")]).unwrap().any());
        for (k, v) in [
            ("NOTIFICATION_TOPIC_ARN", "ec2-failover"),
            (
                "NOTIFICATION_TOPIC_ARN",
                "arn:aws:sqs:ap-northeast-1:123456789012:q",
            ),
            ("EVENT_BUS", "my bus"),
        ] {
            let e = read(&[(k, v)]).unwrap_err();
            assert_eq!(e.variable, k, "{e}");
        }
    }
}
