//! The upkeep's decisions, pure: what changes so that exactly one standby
//! stands ready, from the newest AMI, in another AZ than the appliance, in
//! its mode's state. Which standby is fit (and which a failover promotes) is
//! [`crate::replacement::promotion`]'s rule, shared with the failover.

use chrono::{DateTime, Utc};

use crate::cloud::{Instance, InstanceState, TAG_STANDBY, TAG_STANDBY_FOR, Tag};
use crate::config::{Settings, Standby};
use crate::engine::{Change, Decision, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::{Inherited, World};
use crate::replacement::{launch_change, newest_image, newest_required, source_dest_steps, unfit};

/// The standby the upkeep keeps: fit for `appliance`, from the newest AMI,
/// preferably already in the mode's state, then the youngest.
pub fn keeper<'a>(
    world: &'a World,
    settings: &Settings,
    appliance: &Instance,
) -> Option<&'a Instance> {
    let mode = settings.failover.standby;
    let newest = newest_image(&world.images).map(|i| i.id.as_str());
    let settled = |s: &Instance| match (mode, s.state) {
        (Standby::Hot, InstanceState::Running) | (Standby::Warm, InstanceState::Stopped) => 0,
        _ => 1,
    };
    world
        .standbys
        .iter()
        .filter(|s| unfit(s, appliance).is_none())
        .filter(|s| newest.is_none() || s.image_id.as_deref() == newest)
        .min_by_key(|s| (settled(s), std::cmp::Reverse(s.launch_time), s.id.clone()))
}

/// Every change that leaves exactly one standby ready for `appliance`.
/// `inherited` is what a new standby copies of the appliance (read by the
/// caller only when [`keeper`] finds none). An instance tagged as a standby
/// that the function did not launch as one is left alone, and said so.
pub fn upkeep(
    world: &World,
    settings: &Settings,
    appliance: &Instance,
    inherited: &Inherited,
    now: DateTime<Utc>,
) -> Result<Vec<PlannedStep>, FailoverError> {
    let mut steps = keep_one(world, settings, (appliance, inherited), now)?;
    steps.extend(world.instances.iter().filter(|i| i.claims_standby()).map(|i| {
        let why = format!(
            "{} is tagged {TAG_STANDBY}, but EC2's record of its launch (its ClientToken) does not say the function launched it as a standby: not the function's to start, stop or terminate",
            i.id
        );
        PlannedStep::on(Step::Standby, i.id.clone(), Decision::LeaveAlone(why))
    }));
    Ok(steps)
}

fn keep_one(
    world: &World,
    settings: &Settings,
    (appliance, inherited): (&Instance, &Inherited),
    now: DateTime<Utc>,
) -> Result<Vec<PlannedStep>, FailoverError> {
    let mode = settings.failover.standby;
    let others = |keep: Option<&str>| -> Vec<&Instance> {
        world
            .standbys
            .iter()
            .filter(|s| !s.state.is_gone() && Some(s.id.as_str()) != keep)
            .collect()
    };
    if mode == Standby::Cold {
        let steps = retire(&others(None), "STANDBY=cold keeps no standby", true);
        return Ok(or_nothing(steps, "no standby, as STANDBY=cold wants"));
    }
    let Some(keeper) = keeper(world, settings, appliance) else {
        let mut steps = vec![launch(world, settings, (appliance, inherited), now)?];
        // One in the appliance's AZ goes at once: an AZ outage takes both,
        // and at most one standby is kept. Others stay until the new one runs.
        let (beside, older): (Vec<&Instance>, Vec<&Instance>) = others(None)
            .into_iter()
            .partition(|s| s.availability_zone == appliance.availability_zone);
        steps.extend(retire(&beside, "is in the appliance's own AZ", true));
        steps.extend(retire(&older, "superseded", false));
        return Ok(steps);
    };
    let mut steps = vec![settle(keeper, mode)];
    let ready = keeper.state != InstanceState::Pending;
    // What a promotion would otherwise do first, done ahead: one call less
    // between the alarm and the floating IP.
    if ready {
        steps.extend(source_dest_steps(&keeper.id, Some(keeper)));
    }
    let why = format!("superseded by {}", keeper.id);
    steps.extend(retire(&others(Some(&keeper.id)), &why, ready));
    Ok(steps)
}

fn or_nothing(steps: Vec<PlannedStep>, nothing: &str) -> Vec<PlannedStep> {
    if steps.is_empty() {
        vec![PlannedStep::new(
            Step::Standby,
            Decision::AlreadyDone(nothing.to_owned()),
        )]
    } else {
        steps
    }
}

/// The keeper in its mode's state: running (hot) or stopped (warm).
fn settle(keeper: &Instance, mode: Standby) -> PlannedStep {
    let id = &keeper.id;
    let where_ = format!(
        "standby {id} ({}, {}, {})",
        keeper.state.as_str(),
        keeper.availability_zone,
        keeper.image_id.as_deref().unwrap_or("AMI unknown")
    );
    let decision = match (mode, keeper.state) {
        (Standby::Hot, InstanceState::Stopped) => Decision::Make(Change::Start {
            instance: id.clone(),
        }),
        (Standby::Warm, InstanceState::Running) => Decision::Make(Change::Stop {
            instance: id.clone(),
            force: false,
        }),
        (Standby::Warm, InstanceState::Pending) => {
            Decision::Noted(format!("{where_} is stopped once it runs"))
        }
        (Standby::Hot, InstanceState::Pending) => Decision::Noted(format!("{where_} is starting")),
        _ => Decision::AlreadyDone(format!("{where_} is ready")),
    };
    PlannedStep::on(Step::Standby, id.clone(), decision)
}

/// TerminateInstances of each of `standbys` when `now_ok`, else a note that
/// it stays until its successor runs.
fn retire(standbys: &[&Instance], why: &str, now_ok: bool) -> Vec<PlannedStep> {
    standbys
        .iter()
        .map(|s| {
            let decision = match now_ok {
                true => Decision::Make(Change::Terminate {
                    instance: s.id.clone(),
                    why: format!(
                        "standby {} ({}, {}) {why}",
                        s.id,
                        s.availability_zone,
                        s.image_id.as_deref().unwrap_or("AMI unknown")
                    ),
                }),
                false => Decision::Noted(format!(
                    "standby {} ({}) is {why}; it stays until its successor runs",
                    s.id, s.availability_zone
                )),
            };
            PlannedStep::on(Step::Standby, s.id.clone(), decision)
        })
        .collect()
}

/// RunInstances of a new standby like `appliance`, in another AZ. Its
/// ClientTokens are stable for the appliance, AMI and hour: a retry after a
/// lost answer gets the same instance, a standby EC2 terminated on launch is
/// tried again the next hour.
fn launch(
    world: &World,
    settings: &Settings,
    (appliance, inherited): (&Instance, &Inherited),
    now: DateTime<Utc>,
) -> Result<PlannedStep, FailoverError> {
    let image = newest_required(world, settings, " to launch a standby from")?;
    let own = [
        Tag::new(TAG_STANDBY, settings.failover.standby.as_str()),
        Tag::new(TAG_STANDBY_FOR, &appliance.id),
    ];
    let seed = format!(
        "standby-{}-{}-{}",
        appliance.id,
        image.id,
        now.format("%Y%m%d%H")
    );
    let launch = launch_change(
        world,
        settings,
        ((appliance, inherited), &own),
        image,
        (&seed, 0),
        now,
    )?;
    Ok(PlannedStep::new(
        Step::Standby,
        Decision::Make(Change::Launch(launch)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{now, settings, standby, with_standbys as seen};

    fn with_mode(mode: &str) -> Settings {
        let mut s = settings();
        s.failover.standby = match mode {
            "warm" => Standby::Warm,
            "hot" => Standby::Hot,
            _ => Standby::Cold,
        };
        s
    }

    fn changes(steps: &[PlannedStep]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match &s.decision {
                Decision::Make(c) => Some(c.describe()),
                _ => None,
            })
            .map(|d| d.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn the_upkeep_launches_first_and_retires_the_superseded_once_the_new_one_is_up() {
        let old = standby(
            "i-old",
            InstanceState::Stopped,
            "ap-northeast-1c",
            "ami-old",
        );
        let (w, appliance) = seen(vec![old.clone()]);
        let s = with_mode("warm");
        let steps = upkeep(&w, &s, &appliance, &Inherited::default(), now()).unwrap();
        assert_eq!(changes(&steps), ["RunInstances ami-new"]);
        let Decision::Make(Change::Launch(l)) = &steps[0].decision else {
            panic!("{steps:?}")
        };
        let tags = &l.attempts[0].request.tags;
        assert!(tags.contains(&Tag::new(TAG_STANDBY, "warm")), "{tags:?}");
        assert!(
            tags.contains(&Tag::new(TAG_STANDBY_FOR, "i-app")),
            "{tags:?}"
        );
        assert_eq!(l.attempts[0].availability_zone, "ap-northeast-1c");
        // The new one still pending: the old stays. Running: stopped, old retired.
        let new = standby(
            "i-new",
            InstanceState::Pending,
            "ap-northeast-1c",
            "ami-new",
        );
        let (w, appliance) = seen(vec![old.clone(), new.clone()]);
        let steps = upkeep(&w, &s, &appliance, &Inherited::default(), now()).unwrap();
        assert_eq!(changes(&steps), Vec::<String>::new());
        let running = Instance {
            state: InstanceState::Running,
            ..new
        };
        let (w, appliance) = seen(vec![old, running]);
        let steps = upkeep(&w, &s, &appliance, &Inherited::default(), now()).unwrap();
        assert_eq!(
            changes(&steps),
            [
                "StopInstances i-new",
                "ModifyInstanceAttribute i-new",
                "TerminateInstances i-old:"
            ]
        );
    }

    #[test]
    fn each_mode_settles_its_standby_and_cold_retires_them_all() {
        let stopped = standby("i-1", InstanceState::Stopped, "ap-northeast-1c", "ami-new");
        let (w, appliance) = seen(vec![stopped]);
        let plan = |mode: &str| {
            changes(
                &upkeep(
                    &w,
                    &with_mode(mode),
                    &appliance,
                    &Inherited::default(),
                    now(),
                )
                .unwrap(),
            )
        };
        assert_eq!(
            plan("hot"),
            ["StartInstances i-1", "ModifyInstanceAttribute i-1"]
        );
        assert_eq!(plan("warm"), ["ModifyInstanceAttribute i-1"]);
        assert_eq!(plan("cold"), ["TerminateInstances i-1:"]);
        let (w, appliance) = seen(vec![]);
        let steps = upkeep(
            &w,
            &with_mode("cold"),
            &appliance,
            &Inherited::default(),
            now(),
        );
        assert!(matches!(
            steps.unwrap()[0].decision,
            Decision::AlreadyDone(_)
        ));
    }

    #[test]
    fn a_standby_by_tag_alone_is_never_terminated_and_the_upkeep_says_so() {
        let mut forged = standby(
            "i-foreign",
            InstanceState::Running,
            "ap-northeast-1c",
            "ami-new",
        );
        forged.client_token = None;
        assert!(!forged.is_standby() && forged.claims_standby());
        let (mut w, appliance) = seen(vec![]);
        w.instances.push(forged);
        let steps = upkeep(
            &w,
            &with_mode("cold"),
            &appliance,
            &Inherited::default(),
            now(),
        );
        let steps = steps.unwrap();
        assert_eq!(changes(&steps), Vec::<String>::new());
        let left = steps
            .iter()
            .find(|s| s.subject.as_deref() == Some("i-foreign"));
        assert!(
            matches!(left.map(|s| &s.decision), Some(Decision::LeaveAlone(why)) if why.contains("ClientToken")),
            "{steps:?}"
        );
    }
}
