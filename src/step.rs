//! The steps a job records, by name: an enum, so a report, a metric and an
//! error all spell a step the same way and the compiler knows every one.

use std::fmt;

/// One kind of step. Steps that act on one of several resources (a route, an
/// AMI, a snapshot) add the resource as the record's subject:
/// `route rtb-1 10.242.2.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    // Looks and decisions: they never change the world.
    Discover,
    Assess,
    Confirm,
    FlapGuard,
    Wait,
    Retention,
    CheckerPort,
    CheckerRanges,
    KeptRanges,
    Alarm,
    /// A drill's guardrail alarms (`DRILL_GUARDRAIL_ALARMS`), read before it moves.
    Guardrails,
    Preflight,
    // Changes.
    StopFailed,
    /// A standby becomes the replacement (instead of a launch).
    Promote,
    Launch,
    SourceDestCheck,
    FloatingIp,
    Route,
    DnsRecord,
    CreateImage,
    TagSnapshots,
    Prune,
    Orphan,
    RevokeRanges,
    AuthorizeRanges,
    Fence,
    /// The standby's upkeep: launched, in its mode's state, superseded ones gone.
    Standby,
    /// The replacement is marked: its incident's move is complete.
    MarkMoved,
    /// The incident is handed to a human: its move was undone by hand.
    HandOver,
    /// The group's lease (LOCK_TABLE): taken before a job changes the group.
    Lease,
    /// People were told (mail to the notification topic, EventBridge events).
    Notify,
    /// The group's pause: set, ended, or holding a job back.
    Pause,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::Lease => "lease",
            Self::Assess => "assess",
            Self::Confirm => "confirm",
            Self::FlapGuard => "flap_guard",
            Self::Wait => "wait_for_replacement",
            Self::Retention => "retention",
            Self::CheckerPort => "checker_port",
            Self::CheckerRanges => "checker_ranges",
            Self::KeptRanges => "kept_ranges",
            Self::Alarm => "alarm",
            Self::Guardrails => "guardrails",
            Self::Preflight => "preflight",
            Self::StopFailed => "stop_failed_instance",
            Self::Promote => "promote_standby",
            Self::Launch => "launch_replacement",
            Self::SourceDestCheck => "source_dest_check",
            Self::FloatingIp => "floating_ip",
            Self::Route => "route",
            Self::DnsRecord => "dns_record",
            Self::CreateImage => "create_image",
            Self::TagSnapshots => "tag_snapshots",
            Self::Prune => "prune",
            Self::Orphan => "orphan",
            Self::RevokeRanges => "revoke_ranges",
            Self::AuthorizeRanges => "authorize_ranges",
            Self::Fence => "fence",
            Self::Standby => "standby",
            Self::MarkMoved => "mark_moved",
            Self::HandOver => "hand_over",
            Self::Notify => "notify",
            Self::Pause => "pause",
        }
    }

    /// True for steps that change the world (as opposed to looking at it).
    pub fn is_change(self) -> bool {
        !matches!(
            self,
            Self::Discover
                | Self::Assess
                | Self::Confirm
                | Self::FlapGuard
                | Self::Wait
                | Self::Retention
                | Self::CheckerPort
                | Self::CheckerRanges
                | Self::KeptRanges
                | Self::Alarm
                | Self::Guardrails
                | Self::Preflight
                | Self::Notify
                | Self::Pause
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
