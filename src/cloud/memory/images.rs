//! AMIs and their snapshots: CreateImage's rules, a pending AMI, and the
//! deregister/delete order EC2 enforces (a registered AMI's snapshot is in use).

use super::account::{Account, err};
use super::records::{ImageRec, SnapshotRec};
use super::tags::check_tags;
use crate::cloud::{CloudError, Image, ImageRequest, InstanceState, Operation};

impl Account {
    /// DescribeImages: pending images whose looks are used up are available.
    pub(super) fn tick_images(&mut self) {
        for i in &mut self.images {
            if i.state == "pending" {
                if i.pending_looks == 0 {
                    i.state = "available".to_owned();
                } else {
                    i.pending_looks -= 1;
                }
            }
        }
    }

    pub(super) fn describe_image(r: &ImageRec) -> Image {
        Image {
            id: r.id.clone(),
            name: Some(r.name.clone()),
            state: r.state.clone(),
            creation_date: Some(r.creation_date),
            tags: r.tags.clone(),
            // EC2 lists an AMI's snapshots once it has made them.
            snapshot_ids: if r.state == "pending" {
                Vec::new()
            } else {
                r.snapshot_ids.clone()
            },
            source_instance_id: r.source_instance_id.clone(),
        }
    }

    /// A snapshot for AMI `image`, described as CreateImage of `instance`
    /// describes it (`None`: registered otherwise, no description).
    pub(super) fn new_snapshot(&mut self, image: &str, instance: Option<&str>) -> String {
        let id = self.new_id("snap");
        self.snapshots.push(SnapshotRec {
            id: id.clone(),
            tags: Vec::new(),
            kms_key_id: None,
            description: instance.map(|i| format!("Created by CreateImage({i}) for {image}")),
        });
        id
    }

    pub(super) fn create_image(&mut self, req: &ImageRequest) -> Result<String, CloudError> {
        const OP: Operation = Operation::CreateImage;
        let i = self.instance_index(OP, &req.instance_id)?;
        let state = self.instances[i].state;
        if !matches!(state, InstanceState::Running | InstanceState::Stopped) {
            return Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "The instance '{}' is {}, not running or stopped",
                    req.instance_id,
                    state.as_str()
                ),
            ));
        }
        check_image_request(req)?;
        if let Some(other) = self.images.iter().find(|x| x.owned && x.name == req.name) {
            return Err(err(
                OP,
                "InvalidAMIName.Duplicate",
                format!(
                    "AMI name {} is already in use by AMI {}",
                    req.name, other.id
                ),
            ));
        }
        check_tags(OP, &req.tags)?;
        let volumes = self.instances[i].volumes.len();
        let id = self.new_id("ami");
        let of = Some(req.instance_id.as_str());
        let snapshot_ids = (0..volumes).map(|_| self.new_snapshot(&id, of)).collect();
        let creation_date = self.now();
        let pending = self.image_pending_looks;
        self.images.push(ImageRec {
            id: id.clone(),
            name: req.name.clone(),
            state: if pending == 0 { "available" } else { "pending" }.to_owned(),
            creation_date,
            tags: req.tags.clone(),
            snapshot_ids,
            owned: true,
            pending_looks: pending,
            source_instance_id: Some(req.instance_id.clone()),
            publisher: None,
        });
        Ok(id)
    }

    pub(super) fn deregister_image(&mut self, id: &str) -> Result<(), CloudError> {
        let i = self
            .images
            .iter()
            .position(|x| x.id == id && x.owned)
            .ok_or_else(|| {
                err(
                    Operation::DeregisterImage,
                    "InvalidAMIID.NotFound",
                    format!("The image id '[{id}]' does not exist"),
                )
            })?;
        // Its snapshots stay (and are billed) until deleted.
        self.images.remove(i);
        Ok(())
    }

    pub(super) fn delete_snapshot(&mut self, id: &str) -> Result<(), CloudError> {
        const OP: Operation = Operation::DeleteSnapshot;
        let i = self
            .snapshots
            .iter()
            .position(|x| x.id == id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidSnapshot.NotFound",
                    format!("The snapshot '{id}' does not exist."),
                )
            })?;
        if let Some(image) = self
            .images
            .iter()
            .find(|x| x.snapshot_ids.iter().any(|s| s == id))
        {
            return Err(err(
                OP,
                "InvalidSnapshot.InUse",
                format!("The snapshot {id} is currently in use by {}", image.id),
            ));
        }
        self.snapshots.remove(i);
        Ok(())
    }
}

/// CreateImage's own limits on the name and description it is given.
fn check_image_request(req: &ImageRequest) -> Result<(), CloudError> {
    const OP: Operation = Operation::CreateImage;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    if !(3..=128).contains(&req.name.len()) || !req.name.chars().all(allowed) {
        return Err(err(
            OP,
            "InvalidAMIName.Malformed",
            format!("AMI name {:?} is not 3-128 allowed characters", req.name),
        ));
    }
    if req.description.len() > 255 {
        return Err(err(
            OP,
            "InvalidParameterValue",
            "the description is longer than 255 characters",
        ));
    }
    Ok(())
}
