//! `sync-checker-ranges`: keep a security group open to Route 53's health
//! checkers, and to nothing else on their behalf.
//!
//! The checkers' ranges change without notice (the bastion seed's warning: a
//! range missing from the group makes a healthy appliance look dead and fails
//! it over). The sync is a reconcile: look (GetCheckerIpRanges, the health
//! check's port, the group's rules), diff (pure, below), then revoke and
//! authorize only the difference. A second run finds nothing to do.
//!
//! Ownership: a rule is ours only when its description starts with
//! [`RULE_MARKER`]. Rules without it are never revoked. A foreign rule for
//! exactly a checker range on the port (TCP, that port only) already lets the
//! checkers in, and EC2 refuses a second rule with the same protocol, ports and
//! range (`InvalidPermission.Duplicate`) whatever its description, so such a
//! range counts as covered and is left to its owner. Broader foreign rules
//! (0.0.0.0/0, port ranges) are not read as coverage: they may be narrowed
//! later by whoever owns them.

use std::time::Instant;

use crate::cloud::{Cidr, Cloud, GroupIngress, IngressRule};
use crate::config::Settings;
use crate::engine::{Change, Context, Decision, Executor, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup;
use crate::report::{Outcome, Report, StepLog, StepStatus};

/// Start of the description of every rule this tool adds.
pub const RULE_MARKER: &str = "ec2-failover: Route 53 health checkers";

/// The port when neither `CHECKER_PORT` nor a health check says otherwise (SSH).
pub const DEFAULT_PORT: u16 = 22;

/// Codes that mean another run changed the group between our look and our
/// change; looking again settles it.
const RACE_CODES: &[&str] = &["InvalidPermission.Duplicate", "InvalidPermission.NotFound"];

pub fn is_ours(rule: &IngressRule) -> bool {
    rule.description
        .as_deref()
        .is_some_and(|d| d.starts_with(RULE_MARKER))
}

/// TCP on exactly `port`, from exactly `cidr`: the rule a checker range needs.
fn admits(rule: &IngressRule, port: u16, cidr: &Cidr) -> bool {
    let port = Some(i32::from(port));
    rule.protocol == "tcp" && rule.from_port == port && rule.to_port == port && rule.cidr == *cidr
}

/// What the group needs to match the checker ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeDiff {
    /// Checker ranges with no rule yet: authorize them (marked as ours).
    pub add: Vec<Cidr>,
    /// Our rules no longer wanted (range left the list, or another port): revoke.
    pub remove: Vec<IngressRule>,
    /// Checker ranges our own rules already admit.
    pub kept: Vec<Cidr>,
    /// Checker ranges a rule not ours already admits: left to its owner.
    pub covered: Vec<Cidr>,
}

impl RangeDiff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// The pure half of the sync.
pub fn diff(wanted: &[Cidr], port: u16, rules: &[IngressRule]) -> RangeDiff {
    let mut d = RangeDiff::default();
    let mut seen: Vec<&Cidr> = Vec::new();
    for cidr in wanted {
        if seen.contains(&cidr) {
            continue;
        }
        seen.push(cidr);
        let matching = rules.iter().filter(|r| admits(r, port, cidr));
        let (ours, foreign): (Vec<&IngressRule>, Vec<&IngressRule>) =
            matching.partition(|r| is_ours(r));
        if !ours.is_empty() {
            d.kept.push(*cidr);
        } else if !foreign.is_empty() {
            d.covered.push(*cidr);
        } else {
            d.add.push(*cidr);
        }
    }
    d.remove = rules
        .iter()
        .filter(|r| is_ours(r) && !wanted.iter().any(|c| admits(r, port, c)))
        .cloned()
        .collect();
    d
}

fn list(cidrs: &[Cidr]) -> String {
    if cidrs.is_empty() {
        return "none".to_owned();
    }
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan: revoke first, so the group never needs room for old and new
/// rules at once (EC2 caps rules per group), then authorize.
pub fn plan(group: &str, port: u16, d: &RangeDiff) -> Vec<PlannedStep> {
    let revoke = if d.remove.is_empty() {
        Decision::AlreadyDone(
            "removed 0: every rule of ours admits a current checker range".to_owned(),
        )
    } else {
        Decision::Make(Change::RevokeIngress {
            group: group.to_owned(),
            rules: d.remove.clone(),
        })
    };
    let authorize = if d.add.is_empty() {
        Decision::AlreadyDone("added 0: none".to_owned())
    } else {
        Decision::Make(Change::AuthorizeIngress {
            group: group.to_owned(),
            port,
            ranges: d.add.clone(),
            description: RULE_MARKER.to_owned(),
        })
    };
    let kept = format!(
        "kept {}: {}; covered by rules not ours {}: {}",
        d.kept.len(),
        list(&d.kept),
        d.covered.len(),
        list(&d.covered)
    );
    vec![
        PlannedStep::new(Step::RevokeRanges, revoke),
        PlannedStep::new(Step::AuthorizeRanges, authorize),
        PlannedStep::new(Step::KeptRanges, Decision::AlreadyDone(kept)),
    ]
}

/// The port to open, and where it came from (for the report).
async fn port<C: Cloud>(cloud: &C, settings: &Settings) -> Result<(u16, String), FailoverError> {
    if let Some(p) = settings.checker.port {
        return Ok((p, "CHECKER_PORT".to_owned()));
    }
    let Some(id) = &settings.appliance.health_check_id else {
        return Ok((DEFAULT_PORT, "the default".to_owned()));
    };
    match cloud
        .health_check_port(id)
        .await
        .map_err(FailoverError::during(
            Step::CheckerPort,
            format!("health check {id}"),
        ))? {
        Some(p) => Ok((p, format!("health check {id}"))),
        // Calculated and alarm-based checks have no port; nobody connects.
        None => Ok((
            DEFAULT_PORT,
            format!("the default (health check {id} has no port)"),
        )),
    }
}

/// Finds the one group `CHECKER_SECURITY_GROUP` names.
async fn group<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    wanted: &str,
) -> Result<GroupIngress, FailoverError> {
    let vpc_id = if wanted.starts_with("sg-") {
        None
    } else {
        // A group name is only unique within a VPC.
        Some(lookup::vpc(cloud, &settings.appliance.vpc_name).await?)
    };
    let mut groups = cloud
        .security_group_ingress(wanted, vpc_id.as_deref())
        .await
        .map_err(FailoverError::during(
            Step::Discover,
            format!("security group {wanted}"),
        ))?;
    match groups.len() {
        1 => Ok(groups.remove(0)),
        0 => Err(FailoverError::Missing {
            what: format!(
                "no security group {wanted}{} (CHECKER_SECURITY_GROUP)",
                vpc_id.map(|v| format!(" in {v}")).unwrap_or_default()
            ),
        }),
        n => Err(FailoverError::Ambiguous {
            what: format!("{n} security groups match {wanted} (CHECKER_SECURITY_GROUP)"),
        }),
    }
}

/// What the sync looked at.
struct Seen {
    ranges: Vec<Cidr>,
    port: u16,
    port_from: String,
    group: GroupIngress,
}

async fn look<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    wanted_group: &str,
) -> Result<Seen, FailoverError> {
    let (ranges, port, group) = tokio::join!(
        cloud.checker_ip_ranges(),
        port(cloud, settings),
        group(cloud, settings, wanted_group)
    );
    let ranges = ranges.map_err(FailoverError::during(Step::CheckerRanges, "Route 53"))?;
    let (port, port_from) = port?;
    if ranges.is_empty() {
        // An empty answer would revoke every rule we own and cut the checkers off.
        return Err(FailoverError::Missing {
            what: format!(
                "Route 53 {} returned no ranges; the group's rules were kept",
                crate::cloud::Operation::GetCheckerIpRanges
            ),
        });
    }
    Ok(Seen {
        ranges,
        port,
        port_from,
        group: group?,
    })
}

impl Seen {
    fn summary(&self) -> String {
        let v6 = self
            .ranges
            .iter()
            .filter(|c| matches!(c, Cidr::V6 { .. }))
            .count();
        format!(
            "{} checker range(s) ({} IPv4, {v6} IPv6); {} ({}) has {} CIDR rule(s), {} of them ours; TCP port {} from {}",
            self.ranges.len(),
            self.ranges.len() - v6,
            self.group.id,
            self.group.name,
            self.group.rules.len(),
            self.group.rules.iter().filter(|r| is_ours(r)).count(),
            self.port,
            self.port_from
        )
    }
}

/// Codes that mean another run changed the group between our look and our
/// change; looking again settles it.
fn is_race(e: &FailoverError) -> bool {
    matches!(e, FailoverError::Aws { source, .. }
        if source.code().is_some_and(|c| RACE_CODES.contains(&c)))
}

/// Plans the difference and hands it to the executor. The records of a first
/// attempt that met a race are dropped: the next look decides afresh.
async fn reconcile<C: Cloud>(
    exec: &Executor<'_, C>,
    seen: &Seen,
    last: bool,
    log: &mut StepLog,
) -> Result<RangeDiff, FailoverError> {
    let d = diff(&seen.ranges, seen.port, &seen.group.rules);
    let mut attempt = StepLog::new();
    let result = exec
        .in_order(&plan(&seen.group.id, seen.port, &d), &mut attempt)
        .await;
    if last || !matches!(&result, Err(e) if is_race(e)) {
        log.absorb(attempt);
    }
    result.map(|_| d)
}

/// One sync, as the handler derived it from the trigger.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub incident: String,
    pub reason: String,
}

/// Runs (or, through a dry-run executor, plans) one sync.
pub async fn sync<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &SyncRequest,
) -> Result<Report, FailoverError> {
    let (cloud, exec, settings) = (ctx.cloud(), &ctx.exec, ctx.settings);
    let (incident, reason) = (req.incident.as_str(), req.reason.as_str());
    let Some(wanted_group) = settings.checker.security_group.as_deref() else {
        return Ok(Report::ignored(
            incident,
            format!(
                "{reason}; CHECKER_SECURITY_GROUP is not set, so there is no group to keep in step"
            ),
        ));
    };
    let mut log = StepLog::new();
    let t = Instant::now();
    let mut seen = look(cloud, settings, wanted_group).await?;
    log.record(Step::Discover, StepStatus::Done, seen.summary(), t);

    // A concurrent sync (SNS and schedule at once) can change the group between
    // our look and our change; EC2 then refuses, and one fresh look settles it.
    let d = match reconcile(exec, &seen, false, &mut log).await {
        Err(e) if is_race(&e) => {
            tracing::warn!(error = %e, "the group changed under us; looking again");
            seen.group = group(cloud, settings, &seen.group.id).await?;
            reconcile(exec, &seen, true, &mut log).await?
        }
        other => other?,
    };

    let outcome = exec.outcome(Outcome::RangesSynced);
    let reason = format!(
        "{reason}; {} TCP {}: added {}, removed {}, kept {}, covered by rules not ours {}",
        seen.group.id,
        seen.port,
        d.add.len(),
        d.remove.len(),
        d.kept.len(),
        d.covered.len()
    );
    let report = Report::new(outcome, incident, reason, log.into_records());
    tracing::info!(outcome = ?report.outcome, reason = %report.reason, "checker ranges");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn rule(c: &str, port: i32, description: Option<&str>) -> IngressRule {
        IngressRule {
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            cidr: cidr(c),
            description: description.map(str::to_owned),
        }
    }

    fn ours(c: &str, port: i32) -> IngressRule {
        rule(c, port, Some(RULE_MARKER))
    }

    #[test]
    fn adds_missing_removes_departed_keeps_current() {
        let wanted = [
            cidr("15.177.0.0/18"),
            cidr("54.183.255.128/26"),
            cidr("2600:1f14:7ff:f800::/56"),
        ];
        let rules = [
            ours("15.177.0.0/18", 22),
            ours("107.23.255.0/26", 22),
            rule("10.0.0.0/8", 22, Some("office")),
        ];
        let d = diff(&wanted, 22, &rules);
        assert_eq!(
            d.add,
            [cidr("54.183.255.128/26"), cidr("2600:1f14:7ff:f800::/56")]
        );
        assert_eq!(d.remove, [ours("107.23.255.0/26", 22)]);
        assert_eq!(d.kept, [cidr("15.177.0.0/18")]);
        assert!(d.covered.is_empty());
    }

    #[test]
    fn foreign_rules_are_never_removed_and_exact_ones_cover() {
        let wanted = [cidr("15.177.0.0/18")];
        let rules = [
            rule("15.177.0.0/18", 22, Some("added by hand")),
            rule("107.23.255.0/26", 22, None),
            rule("0.0.0.0/0", 443, Some("web")),
        ];
        let d = diff(&wanted, 22, &rules);
        assert!(d.remove.is_empty(), "{d:?}");
        assert!(d.add.is_empty(), "{d:?}");
        assert_eq!(d.covered, [cidr("15.177.0.0/18")]);
    }

    #[test]
    fn broader_foreign_rules_do_not_cover() {
        let wanted = [cidr("15.177.0.0/18")];
        let mut all_ports = rule("15.177.0.0/18", 0, None);
        all_ports.to_port = Some(65535);
        let rules = [rule("0.0.0.0/0", 22, None), all_ports];
        assert_eq!(diff(&wanted, 22, &rules).add, [cidr("15.177.0.0/18")]);
    }

    #[test]
    fn a_new_port_moves_our_rules() {
        let wanted = [cidr("15.177.0.0/18")];
        let d = diff(&wanted, 443, &[ours("15.177.0.0/18", 22)]);
        assert_eq!(d.add, [cidr("15.177.0.0/18")]);
        assert_eq!(d.remove, [ours("15.177.0.0/18", 22)]);
    }

    #[test]
    fn in_step_means_nothing_to_do_and_duplicates_count_once() {
        let wanted = [cidr("15.177.0.0/18"), cidr("15.177.0.0/18")];
        let d = diff(&wanted, 22, &[ours("15.177.0.0/18", 22)]);
        assert!(d.is_empty());
        assert_eq!(d.kept.len(), 1);
    }

    #[test]
    fn only_descriptions_starting_with_the_marker_are_ours() {
        assert!(is_ours(&ours("15.177.0.0/18", 22)));
        let not = rule(
            "15.177.0.0/18",
            22,
            Some("copied from ec2-failover: Route 53 health checkers"),
        );
        assert!(!is_ours(&not));
        assert!(!is_ours(&rule("15.177.0.0/18", 22, None)));
    }
}
