//! What EC2 vouches for. Anyone in the account with `ec2:CreateTags` can
//! write the tags this function reads (`ec2-failover:standby`,
//! `ec2-failover:replaces`), but an instance's `ClientToken` is set once, by
//! the RunInstances that launched it, and DescribeInstances returns it: it
//! cannot be written later. So every launch's token carries the function's
//! mark, the role it launched the instance in and the instance it launched
//! it for, and the tags are trusted to say what an instance replaced or
//! backs up only when its token says the same. An instance tagged as a
//! standby without such a token is not a standby (nothing terminates it);
//! a `replaces` tag the token does not back makes the fence stop nothing.
//!
//! `efr-<replaced>-<digest>` marks a replacement of instance `<replaced>`,
//! `efs-<appliance>-<digest>` a standby of `<appliance>`; the digest (of the
//! incident or the standby's seed, with its generation and attempt) keeps
//! every launch attempt's token its own, as EC2's idempotency needs. A token
//! proves only that whoever launched the instance chose it: a principal that
//! may call RunInstances could choose the same, but far fewer hold that than
//! CreateTags, and none can give an existing instance a token.

use std::collections::BTreeSet;

use sha2::Digest;

use super::{Image, Instance};

/// The role the function launched an instance in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A failover's replacement of another instance.
    Replacement,
    /// A standby kept ready for an appliance.
    Standby,
}

impl Role {
    fn mark(self) -> &'static str {
        match self {
            Self::Replacement => "efr-",
            Self::Standby => "efs-",
        }
    }
}

const DIGEST_HEX: usize = 16;

/// The first `bytes` bytes of `text`'s SHA-256, in hex: a short name that is
/// stable for the same text (ClientTokens, incident ids).
pub fn digest_hex(text: &str, bytes: usize) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The ClientToken of one launch attempt in `role` for instance `of`;
/// `attempt` names the attempt (the incident or seed, generation, attempt).
/// At most 64 ASCII characters, as EC2 requires.
pub fn token(role: Role, of: &str, attempt: &str) -> String {
    let hex = digest_hex(attempt, DIGEST_HEX / 2);
    // Instance ids are `i-` and 8 or 17 hex digits; anything else is cut to
    // what keeps the token within EC2's limit.
    let of: String = of
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("{}{of}-{hex}", role.mark())
}

/// What a ClientToken says the function launched its instance as, and for
/// which instance; `None` for any token the function did not mint.
pub fn launched_as(token: &str) -> Option<(Role, &str)> {
    let (role, rest) = [Role::Replacement, Role::Standby]
        .into_iter()
        .find_map(|r| Some((r, token.strip_prefix(r.mark())?)))?;
    let (of, digest) = rest.rsplit_once('-')?;
    let hex = digest.len() == DIGEST_HEX && digest.chars().all(|c| c.is_ascii_hexdigit());
    (hex && of.starts_with("i-")).then_some((role, of))
}

/// The appliance's lineage, as EC2 vouches for it: the instances now
/// serving (`serving`), every instance the function launched, and every
/// instance one of those was launched for. An AMI is the appliance's own
/// when CreateImage made it of one of them.
pub fn lineage<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
    serving: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = serving.into_iter().map(str::to_owned).collect();
    for i in instances {
        if let Some((_, launched_for)) = i.launched_as() {
            ids.insert(i.id.clone());
            ids.insert(launched_for.to_owned());
        }
    }
    ids
}

/// Whether `image` may be launched: made of the lineage, as EC2 records
/// it (`SourceInstanceId`), or vouched for by the operator (`BASE_AMI_ID`).
pub fn trusted(image: &Image, lineage: &BTreeSet<String>, vouched: &[String]) -> bool {
    vouched.contains(&image.id)
        || image
            .source_instance_id
            .as_ref()
            .is_some_and(|s| lineage.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_says_the_role_and_the_instance_and_is_its_attempts_own() {
        let t = token(Role::Replacement, "i-0123456789abcdef0", "alarm-1-g2-3");
        assert!(t.len() <= 64 && t.is_ascii(), "{t}");
        assert_eq!(
            launched_as(&t),
            Some((Role::Replacement, "i-0123456789abcdef0"))
        );
        let s = token(Role::Standby, "i-12345678", "standby-i-12345678-ami-1");
        assert_eq!(launched_as(&s), Some((Role::Standby, "i-12345678")));
        assert_ne!(
            token(Role::Replacement, "i-1", "alarm-1"),
            token(Role::Replacement, "i-1", "alarm-1-1"),
            "each attempt its own token"
        );
        let long = token(Role::Standby, &format!("i-{}", "f".repeat(80)), "x");
        assert!(long.len() <= 64, "{long}");
    }

    #[test]
    fn tokens_the_function_did_not_mint_say_nothing() {
        for foreign in [
            "",
            "alarm-8e245aa99b2ea865cde6",
            "efr-",
            "efr-i-1",
            "efr-i-1-xyz",
            "efr-i-1-0123456789abcdeg",
            "efx-i-1-0123456789abcdef",
            "efs-vol-1-0123456789abcdef",
            "ABCDE",
        ] {
            assert_eq!(launched_as(foreign), None, "{foreign:?}");
        }
    }
}
