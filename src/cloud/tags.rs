//! The tags this function reads and writes (its bookkeeping on replacements,
//! AMIs and standbys, and the operator's group tag), and the tag record.

/// Tag recording which incident launched a replacement (and so resumes it).
pub const TAG_INCIDENT: &str = "ec2-failover:incident";
/// Tag recording the instance a replacement took over from.
pub const TAG_REPLACES: &str = "ec2-failover:replaces";
/// Tag marking AMIs (and their snapshots) this tool created: only these are
/// ever pruned.
pub const TAG_CREATED_BY: &str = "ec2-failover:created-by";
/// The value of [`TAG_CREATED_BY`].
pub const CREATED_BY: &str = "ec2-failover";
/// Tag recording the instance an AMI was taken from.
pub const TAG_SOURCE_INSTANCE: &str = "ec2-failover:source-instance";
/// Tag on a snapshot naming the AMI it belongs to, so a snapshot left behind
/// by a crash between DeregisterImage and DeleteSnapshot can be recognised.
pub const TAG_IMAGE: &str = "ec2-failover:image";
/// The operator's tag on every resource of a failover group (instance, AMIs,
/// candidate subnets, route tables), value the group's name: the IAM policy of
/// a `FAILOVER_GROUPS` deployment allows its calls only on resources carrying
/// it. Unlike the bookkeeping tags above, replacements and AMIs inherit it.
pub const TAG_GROUP: &str = "ec2-failover:group";
/// The role tag of a standby (`STANDBY=warm|hot`), value its mode: an instance
/// tagged `Name=INSTANCE_NAME` with it, and not promoted ([`TAG_REPLACES`]),
/// is kept ready and is never "the one running appliance". A promoted standby
/// keeps it, as history.
pub const TAG_STANDBY: &str = "ec2-failover:standby";
/// When a standby was promoted to replacement (RFC 3339): its age as a
/// replacement counts from then.
pub const TAG_PROMOTED_AT: &str = "ec2-failover:promoted-at";
/// The appliance instance a standby was launched to back up.
pub const TAG_STANDBY_FOR: &str = "ec2-failover:standby-for";
/// On a replacement: when its incident's own move (floating IP, routes, DNS)
/// completed (RFC 3339). Without it the incident is open and a reconcile
/// finishes it; with it, the floating IP, a route or the record found
/// elsewhere was moved by someone else (a human) after the move.
pub const TAG_MOVED_AT: &str = "ec2-failover:moved-at";
/// On a replacement: when its incident was handed to a human (RFC 3339),
/// because its floating IP, a route or the record was moved by hand. The
/// function stands down for that incident from then on.
pub const TAG_HANDED_OVER: &str = "ec2-failover:handed-over";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Value of tag `key` in `tags`.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}
