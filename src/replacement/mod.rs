//! How the appliance is replaced, decided without calling AWS: pure
//! decisions over what the look found, so every rule (which instance failed,
//! which AZ, which AMI, which routes move) has fast unit tests on fixtures.
//!
//! Three jobs decide this way, so it lives below them rather than in one of
//! them: the failover carries the plan out, preflight proves it with DryRun
//! calls, and the standby's upkeep launches its standby like a replacement.
//!
//! It goes by phase: `assess` (which instance failed, where the incident
//! stands), `promotion` (the standby a failover promotes), `launch` (the
//! replacement's launch and the failed instance's stop), then `network` and
//! `dns` (every step after the launch). This module holds the two plans the
//! failover runs, and names every rule at `replacement::` so callers need not
//! know the phases.

mod assess;
mod dns;
mod hands;
mod launch;
mod network;
mod promotion;

use chrono::{DateTime, Utc};

use crate::cloud::{Instance, TAG_INCIDENT};
use crate::config::{DnsAddress, Settings};
use crate::engine::{Change, Decision, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::{Inherited, World};

pub use assess::{ContinueReason, Situation, assess, failed_instance, recent_failovers};
pub use dns::dns_decision;
use dns::{blind_upsert, dns_target};
pub use hands::{Hands, hands};
use launch::replacement_launch;
pub use launch::{
    Leg, Placement, after, candidate_subnets, incident_image, inherited_tags, launch_attempts,
    launch_change, launch_request, legs_of, newest_image, newest_required, relaunch,
    replacement_tags, stop_step, untrusted,
};
use network::floating_ip_decision;
pub use network::{route_decision, route_target_for, source_dest_steps};
pub use promotion::{promotion, unfit};

/// The incident a launch belongs to: its id names the ClientTokens and the
/// replacement's tag; the time it began chooses its AMI
/// ([`incident_image`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incident<'a> {
    pub id: &'a str,
    pub began: DateTime<Utc>,
}

/// The stop and the launch of this incident: what a new failover does, or
/// what a resumed one finds already done.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    pub stop: PlannedStep,
    pub launch: PlannedStep,
    /// The AMI a new replacement launches from.
    pub image: Option<String>,
    /// Where the first launch attempt goes (what a plan reports).
    pub availability_zone: Option<String>,
    /// What a new launch read of the original (`None`: not read, as for a
    /// resumed incident); a later round of tokens launches the same way.
    pub inherited: Option<Inherited>,
}

/// `generation` numbers the rounds of ClientTokens: 0 first, one more each
/// time every token of the round is spent on replacements EC2 terminated.
pub fn launch_plan(
    world: &World,
    settings: &Settings,
    (situation, inherited): (&Situation, &Inherited),
    incident: Incident<'_>,
    now: DateTime<Utc>,
    generation: u32,
) -> Result<LaunchPlan, FailoverError> {
    let failed = match situation {
        Situation::Fresh { failed } => failed,
        Situation::Continue {
            replacement,
            failed,
            failed_id,
            ..
        } => {
            let detail = format!(
                "{} ({}) in {} was launched by incident {}",
                replacement.id,
                replacement.state.as_str(),
                replacement.availability_zone,
                replacement.tag(TAG_INCIDENT).unwrap_or("unknown")
            );
            return Ok(LaunchPlan {
                stop: stop_step(failed.as_ref(), failed_id.as_deref()),
                launch: PlannedStep::new(Step::Launch, Decision::AlreadyDone(detail)),
                image: replacement.image_id.clone(),
                availability_zone: Some(replacement.availability_zone.clone()),
                inherited: None,
            });
        }
    };
    let (launch, image) = replacement_launch(
        world,
        settings,
        (failed, inherited),
        (incident, generation),
        now,
    )?;
    Ok(LaunchPlan {
        stop: stop_step(Some(failed), Some(&failed.id)),
        availability_zone: launch.attempts.first().map(|a| a.availability_zone.clone()),
        launch: PlannedStep::new(Step::Launch, Decision::Make(Change::Launch(launch))),
        image: Some(image.id.clone()),
        inherited: Some(inherited.clone()),
    })
}

/// Every step after the replacement is up, decided against the world as found.
/// `replacement` is the replacement's id; `current` its latest description,
/// when it exists yet.
pub fn post_launch(
    world: &World,
    settings: &Settings,
    replacement: &str,
    current: Option<&Instance>,
    failed_id: Option<&str>,
) -> Vec<PlannedStep> {
    let mut steps = source_dest_steps(replacement, current);
    if let Some(address) = &world.address {
        steps.push(PlannedStep::new(
            Step::FloatingIp,
            floating_ip_decision(address, &world.instances, (replacement, current)),
        ));
    }
    for table in &world.route_tables {
        for cidr in &settings.failover.route_cidrs {
            steps.push(PlannedStep::on(
                Step::Route,
                format!("{} {cidr}", table.id),
                route_decision(
                    &table.id,
                    cidr,
                    table.route_to(cidr),
                    &world.instances,
                    failed_id,
                    (replacement, current),
                ),
            ));
        }
    }
    if let Some(dns) = &settings.dns {
        let target = match (current, dns.address, settings.failover.floating_ip) {
            (Some(_), ..) => dns_target(dns, settings, replacement, current),
            // Dry run: the floating IP is known, the replacement's own addresses are not.
            (None, DnsAddress::Public, Some(ip)) => Ok(ip.to_string()),
            (None, address, _) => Ok(format!("({replacement}'s {} address)", address.as_str())),
        };
        let decision = match &world.dns_records {
            Some(Err(e)) => blind_upsert(dns, target, e),
            Some(Ok(records)) => dns_decision(dns, records, target),
            None => dns_decision(dns, &[], target),
        };
        steps.push(PlannedStep::new(Step::DnsRecord, decision));
    }
    steps
}
