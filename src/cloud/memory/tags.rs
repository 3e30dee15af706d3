//! EC2's tagging rules: reserved `aws:` keys, key lengths, the 50-tag limit,
//! and CreateTags tagging every resource or none.

use super::account::{Account, err};
use crate::cloud::{CloudError, Operation, Tag};

/// The code EC2 answers for an unknown id of this kind.
pub(super) fn not_found_code(id: &str) -> &'static str {
    match id.split_once('-').map(|(p, _)| p) {
        Some("i") => "InvalidInstanceID.NotFound",
        Some("ami") => "InvalidAMIID.NotFound",
        Some("snap") => "InvalidSnapshot.NotFound",
        Some("vpc") => "InvalidVpcID.NotFound",
        Some("subnet") => "InvalidSubnetID.NotFound",
        Some("rtb") => "InvalidRouteTableID.NotFound",
        Some("sg") => "InvalidGroup.NotFound",
        _ => "InvalidID",
    }
}

/// EC2's limit of tags per resource.
pub(super) const TAG_LIMIT: usize = 50;

/// EC2 refuses tag keys in the `aws:` namespace and more than 50 tags.
pub(super) fn check_tags(operation: Operation, tags: &[Tag]) -> Result<(), CloudError> {
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(err(
            operation,
            "InvalidParameterValue",
            format!(
                "Value ( {} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use",
                t.key
            ),
        ));
    }
    if let Some(t) = tags.iter().find(|t| t.key.is_empty() || t.key.len() > 128) {
        return Err(err(
            operation,
            "InvalidParameterValue",
            format!("tag key {:?} must be 1 to 128 characters", t.key),
        ));
    }
    if tags.len() > TAG_LIMIT {
        return Err(err(
            operation,
            "TagLimitExceeded",
            format!("{} tags exceed the limit of {TAG_LIMIT}", tags.len()),
        ));
    }
    Ok(())
}

/// Adds or overwrites `new` in `tags`.
pub(super) fn merge_tags(tags: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
}

impl Account {
    pub(super) fn create_tags(&mut self, ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        const OP: Operation = Operation::CreateTags;
        check_tags(OP, tags)?;
        // Every resource must exist, or nothing is tagged.
        if let Some(id) = ids.iter().find(|id| self.tags_of_mut(id).is_none()) {
            return Err(err(
                OP,
                not_found_code(id),
                format!("The ID '{id}' does not exist"),
            ));
        }
        for id in ids {
            if let Some(t) = self.tags_of_mut(id) {
                merge_tags(t, tags);
                if t.len() > TAG_LIMIT {
                    return Err(err(
                        OP,
                        "TagLimitExceeded",
                        format!("{id} would have more than {TAG_LIMIT} tags"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tags of a taggable resource, by its id's prefix.
    pub(super) fn tags_of_mut(&mut self, id: &str) -> Option<&mut Vec<Tag>> {
        match id.split_once('-').map(|(p, _)| p) {
            Some("i") => self
                .instances
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("ami") => self
                .images
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("snap") => self
                .snapshots
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("vpc") => self
                .vpcs
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("subnet") => self
                .subnets
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("rtb") => self
                .tables
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("sg") => self
                .groups
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            _ => None,
        }
    }
}
