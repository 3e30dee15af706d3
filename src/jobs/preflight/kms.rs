//! The `kms` item: whether a new instance's volumes need a KMS key the
//! function is not granted (`KMS_KEY_ARNS`). EC2 accepts such a launch, then
//! terminates the instance (`Client.InternalError`), so the permission probes
//! (DryRun) cannot see it: the keys are read and compared instead.
//!
//! Two sources of keys: the newest AMI's snapshots, and EBS encryption by
//! default, which encrypts every new volume with the account's default key
//! (GetEbsDefaultKmsKeyId), even from an unencrypted AMI.

use crate::cloud::{Cloud, is_aws_managed_ebs_key};
use crate::config::Settings;
use crate::lookup::{VolumeEncryption, World, volume_encryption};
use crate::replacement as plan;
use crate::report::StepStatus;

use super::Item;

/// What an AMI encrypted with a key the function is not granted leads to.
const FOREIGN_KEY: &str = "if it is a customer-managed key, a replacement dies on launch (Client.InternalError); add it to KmsKeyArns";

/// What a default key the function is not granted leads to.
const FOREIGN_DEFAULT: &str = "every replacement and standby dies on launch (Client.InternalError); add its key ARN to KmsKeyArns";

/// Whether the function may use a key, as far as its name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// In `KMS_KEY_ARNS`.
    Granted,
    /// The AWS managed key of EBS: EBS uses it for the caller, no grant needed.
    AwsManaged,
    /// An alias of the account's own: which key it names cannot be known
    /// offline (that takes `kms:DescribeKey` on the key, which the policy
    /// grants only on `KMS_KEY_ARNS`), and `KMS_KEY_ARNS` holds key ARNs only.
    Alias,
    NotGranted,
}

/// `key` as EC2 names it (a key ARN, a bare key id, `alias/NAME` or an alias
/// ARN) against `granted`, which holds key ARNs (`arn:...:key/ID`, checked
/// when the configuration is read).
fn grant_of(key: &str, granted: &[String]) -> Grant {
    if is_aws_managed_ebs_key(key) {
        return Grant::AwsManaged;
    }
    if key.starts_with("alias/") || key.contains(":alias/") {
        return Grant::Alias;
    }
    let id = |arn: &str| arn.rsplit_once(":key/").map(|(_, id)| id.to_owned());
    let wanted = match key.starts_with("arn:") {
        true => id(key),
        false => Some(key.to_owned()),
    };
    // The same key id in another account or region is another key.
    let same = |g: &String| match key.starts_with("arn:") {
        true => g == key,
        false => id(g) == wanted,
    };
    match granted.iter().any(same) {
        true => Grant::Granted,
        false => Grant::NotGranted,
    }
}

/// The AMI's part: its snapshots' keys not in `KMS_KEY_ARNS`, a warning (the
/// key may be the AWS managed one, which needs no grant).
async fn ami_part<C: Cloud>(
    cloud: &C,
    world: &World,
    granted: &[String],
) -> Option<(StepStatus, String)> {
    let image = plan::newest_image(&world.images)?;
    let snapshots = match cloud.snapshots_by_id(&image.snapshot_ids).await {
        Ok(s) => s,
        Err(e) => return Some((StepStatus::Warn, e.to_string())),
    };
    let foreign: Vec<String> = snapshots
        .iter()
        .filter_map(|s| Some((s, s.kms_key_id.as_deref()?)))
        .filter(|(_, key)| !matches!(grant_of(key, granted), Grant::Granted | Grant::AwsManaged))
        .map(|(s, key)| format!("{} with {key}", s.id))
        .collect();
    Some(match foreign.as_slice() {
        [] => (
            StepStatus::Ok,
            format!(
                "{}'s snapshots need no KMS key beyond KMS_KEY_ARNS",
                image.id
            ),
        ),
        _ => (
            StepStatus::Warn,
            format!(
                "{} is encrypted ({}) with a key not in KMS_KEY_ARNS: {FOREIGN_KEY}",
                image.id,
                foreign.join(", "),
            ),
        ),
    })
}

/// The account's part: EBS encryption by default and its key. A read that
/// fails is a warning, never a failed preflight by itself.
async fn default_part<C: Cloud>(cloud: &C, granted: &[String]) -> (StepStatus, String) {
    let key = match volume_encryption(cloud).await {
        Err(e) => {
            return (
                StepStatus::Warn,
                format!(
                    "EBS encryption by default not read ({e}): if it is on with a customer managed key not in KMS_KEY_ARNS, {FOREIGN_DEFAULT}"
                ),
            );
        }
        Ok(VolumeEncryption::AsTheAmi) => {
            return (
                StepStatus::Ok,
                "EBS encryption by default is off: new volumes are encrypted as the AMI's snapshots are".to_owned(),
            );
        }
        Ok(VolumeEncryption::ByDefault { key }) => key,
    };
    let on = "EBS encryption by default is on";
    match grant_of(&key, granted) {
        Grant::AwsManaged => (
            StepStatus::Ok,
            format!("{on}: new volumes get the AWS managed key ({key}), which needs no grant"),
        ),
        Grant::Granted => (
            StepStatus::Ok,
            format!("{on}: new volumes get {key}, which is in KMS_KEY_ARNS"),
        ),
        Grant::Alias => (
            StepStatus::Warn,
            format!(
                "{on}: new volumes get the key of the alias {key}, which preflight cannot match with KMS_KEY_ARNS offline; unless that key's ARN is in KmsKeyArns, {FOREIGN_DEFAULT}"
            ),
        ),
        Grant::NotGranted => (
            StepStatus::Failed,
            format!(
                "{on} with the default key {key}, which is not in KMS_KEY_ARNS: {FOREIGN_DEFAULT}"
            ),
        ),
    }
}

/// The worse of two statuses: failed over warn over ok.
fn worse(a: StepStatus, b: StepStatus) -> StepStatus {
    let rank = |s: StepStatus| match s {
        StepStatus::Failed => 2,
        StepStatus::Warn => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The keys a new instance's volumes would need, against `KMS_KEY_ARNS`:
/// the worse of the AMI's part and the account's, both told.
pub(super) async fn kms_item<C: Cloud>(cloud: &C, world: &World, settings: &Settings) -> Item {
    let granted = &settings.failover.kms_key_arns;
    let (ami, default) = tokio::join!(
        ami_part(cloud, world, granted),
        default_part(cloud, granted)
    );
    let (status, detail) = match ami {
        Some((status, detail)) => (worse(default.0, status), format!("{}; {detail}", default.1)),
        None => default,
    };
    Item::new("kms", status, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn a_key_is_matched_by_arn_or_id_and_an_alias_is_not_guessed() {
        let granted = [KEY.to_owned()];
        assert_eq!(grant_of(KEY, &granted), Grant::Granted);
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(grant_of(id, &granted), Grant::Granted);
        assert_eq!(grant_of(id, &[]), Grant::NotGranted);
        let elsewhere = KEY.replace("123456789012", "210987654321");
        assert_eq!(grant_of(&elsewhere, &granted), Grant::NotGranted);
        assert_eq!(grant_of("alias/aws/ebs", &[]), Grant::AwsManaged);
        let managed = "arn:aws:kms:ap-northeast-1:123456789012:alias/aws/ebs";
        assert_eq!(grant_of(managed, &[]), Grant::AwsManaged);
        assert_eq!(grant_of("alias/ops-ebs", &granted), Grant::Alias);
        let alias = "arn:aws:kms:ap-northeast-1:123456789012:alias/ops-ebs";
        assert_eq!(grant_of(alias, &granted), Grant::Alias);
    }
}
