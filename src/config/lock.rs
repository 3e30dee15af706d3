//! The deployment's lease table (`LOCK_TABLE`) and how long an invocation
//! waits for a group another one holds (`LOCK_WAIT_SECONDS`). One per
//! deployment, like `ALARM_REGION`, not per group: every group's lease is a
//! row of the same table.

use std::time::Duration;

use super::{ConfigError, Env};

/// The longest wait worth asking for: Lambda's own longest timeout.
const MAX_WAIT_SECONDS: u32 = 900;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSettings {
    /// The DynamoDB table holding one lease per group.
    pub table: String,
    /// `None`: wait as long as the invocation's deadline allows.
    pub wait: Option<Duration>,
}

/// `None` when `LOCK_TABLE` is unset: nothing keeps two jobs of one group
/// apart but the function's reserved concurrency.
pub fn lock_settings(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<LockSettings>, ConfigError> {
    let env = Env::new(&get);
    let wait = env
        .optional("LOCK_WAIT_SECONDS")
        .map(|_| env.whole("LOCK_WAIT_SECONDS", 0, "seconds"))
        .transpose()?;
    if let Some(w) = wait.filter(|w| *w > MAX_WAIT_SECONDS) {
        return Err(ConfigError::new(
            "LOCK_WAIT_SECONDS",
            &w.to_string(),
            format!("is longer than any Lambda invocation ({MAX_WAIT_SECONDS} s)"),
        ));
    }
    let Some(table) = env.optional("LOCK_TABLE") else {
        return Ok(None);
    };
    // DynamoDB's table names: 3 to 255 of letters, digits, `_`, `-`, `.`.
    let valid = (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(ConfigError::new(
            "LOCK_TABLE",
            &table,
            "is not a DynamoDB table name (3 to 255 letters, digits, _ - .)",
        ));
    }
    Ok(Some(LockSettings {
        table,
        wait: wait.map(|w| Duration::from_secs(u64::from(w))),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<LockSettings>, ConfigError> {
        lock_settings(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn a_table_and_a_wait_are_read_and_bad_ones_named() {
        assert_eq!(read(&[]), Ok(None));
        let s = read(&[
            ("LOCK_TABLE", "ec2-failover-locks"),
            ("LOCK_WAIT_SECONDS", "2"),
        ]);
        assert_eq!(
            s,
            Ok(Some(LockSettings {
                table: "ec2-failover-locks".into(),
                wait: Some(Duration::from_secs(2)),
            }))
        );
        let unbounded = read(&[("LOCK_TABLE", "locks"), ("LOCK_WAIT_SECONDS", "")]);
        assert_eq!(unbounded.map(|s| s.and_then(|s| s.wait)), Ok(None));
        for (k, v) in [
            ("LOCK_TABLE", "my table"),
            ("LOCK_TABLE", "ab"),
            ("LOCK_WAIT_SECONDS", "soon"),
            ("LOCK_WAIT_SECONDS", "3600"),
        ] {
            let e = read(&[(k, v), ("LOCK_TABLE", "locks")]).unwrap_err();
            assert_eq!(e.variable, k, "{e}");
        }
    }
}
