//! Whose incident it is: the function's, until someone else moves what the
//! incident moved.
//!
//! A replacement carries [`TAG_MOVED_AT`] once its incident's own move (the
//! floating IP, the managed routes, the DNS record) is complete. Finding one
//! of them elsewhere after that means a person moved it: a hand fail-back to
//! the repaired original, a route pointed at a NAT gateway. Moving it back
//! would fight them, and fencing what they chose would cut their traffic, so
//! the incident is handed to them, once ([`TAG_HANDED_OVER`]), and the
//! function stands down for it. A new incident (the alarm fires anew) is the
//! function's again.
//!
//! Before the mark the move is unfinished, and the function finishes it
//! whatever the alarm says now: a half-moved incident would otherwise leave
//! the VPN route on a stopped instance for good. Only when a reconcile
//! finishes an incident the alarm no longer calls for, and what is left is
//! held by another *running* instance of the appliance, is it not the
//! function's to move: a human put it there, or the failed instance came back
//! before the move and carries the traffic. An appliance that answers is
//! never made to move.

use crate::cloud::{Instance, RouteTarget, TAG_HANDED_OVER, TAG_MOVED_AT};
use crate::config::Settings;
use crate::lookup::World;

use super::assess::{ContinueReason, Situation};
use super::dns::dns_target;

/// Who acts on this incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hands {
    /// The function: go on.
    Ours,
    /// A human, since this time (the replacement's [`TAG_HANDED_OVER`]).
    HandedOver(String),
    /// Moved by hand after the incident's move, just now found: what is
    /// where. Hand it over.
    MovedByHand(Vec<String>),
    /// The incident's move never completed, and what it left is held by a
    /// running instance (a human put it there, or the failed instance came
    /// back first and carries the traffic). Hand it over too.
    HeldByRunning(Vec<String>),
}

/// One managed resource that is not on the replacement.
struct Elsewhere {
    what: String,
    /// The instance of the appliance that holds it, when one does.
    holder: Option<String>,
}

/// Who acts on the incident `situation` resumes. `finishing`: a reconcile
/// finishes it though the alarm no longer calls for a failover.
pub fn hands(world: &World, settings: &Settings, situation: &Situation, finishing: bool) -> Hands {
    let Situation::Continue {
        replacement,
        why: ContinueReason::SameIncident,
        ..
    } = situation
    else {
        return Hands::Ours;
    };
    if let Some(at) = replacement.tag(TAG_HANDED_OVER) {
        return Hands::HandedOver(at.to_owned());
    }
    let moved = replacement.tag(TAG_MOVED_AT).is_some();
    let found: Vec<String> = elsewhere(world, settings, replacement)
        .into_iter()
        .filter(|e| moved || e.holder.as_deref().is_some_and(|h| runs(world, h)))
        .map(|e| e.what)
        .collect();
    match (found.is_empty(), moved, finishing) {
        (false, true, _) => Hands::MovedByHand(found),
        (false, false, true) => Hands::HeldByRunning(found),
        _ => Hands::Ours,
    }
}

/// A live instance of the appliance (not a standby) with this id.
fn runs(world: &World, id: &str) -> bool {
    world.instance(id).is_some_and(|i| i.state.is_live())
}

/// The floating IP, managed routes and DNS record that are not on `r`.
fn elsewhere(world: &World, settings: &Settings, r: &Instance) -> Vec<Elsewhere> {
    let mut found = Vec::new();
    if let Some(a) = &world.address
        && a.instance_id.as_deref() != Some(r.id.as_str())
    {
        found.push(Elsewhere {
            what: format!(
                "floating IP {} is on {}",
                a.public_ip,
                a.instance_id.as_deref().unwrap_or("nothing")
            ),
            holder: a.instance_id.clone(),
        });
    }
    for table in &world.route_tables {
        for cidr in &settings.failover.route_cidrs {
            let target = table.route_to(cidr).map(|route| &route.target);
            let on_r = target
                .and_then(RouteTarget::appliance_id)
                .is_some_and(|t| r.owns_target(t));
            if on_r {
                continue;
            }
            let text = match target {
                Some(RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x))
                | Some(RouteTarget::Other(x)) => x.clone(),
                Some(RouteTarget::None) | None => "nothing".to_owned(),
            };
            let holder = target.and_then(RouteTarget::appliance_id).and_then(|t| {
                let owner = world.instances.iter().find(|i| i.owns_target(t));
                owner.map(|i| i.id.clone())
            });
            found.push(Elsewhere {
                what: format!("route {} {cidr} points at {text}", table.id),
                holder,
            });
        }
    }
    found.extend(record_elsewhere(world, settings, r));
    found
}

/// The simple A record, when it holds another address than the move gave it.
fn record_elsewhere(world: &World, settings: &Settings, r: &Instance) -> Option<Elsewhere> {
    let dns = settings.dns.as_ref()?;
    let Some(Ok(records)) = &world.dns_records else {
        return None; // Route 53 could not be asked: no evidence either way.
    };
    // Alias and routing-policy records are never the function's to move.
    if records
        .iter()
        .any(|r| r.alias || r.set_identifier.is_some())
    {
        return None;
    }
    let want = dns_target(dns, settings, &r.id, Some(r)).ok()?;
    let holds = records.first().map(|rec| rec.values.join(", "));
    if holds.as_deref() == Some(want.as_str()) {
        return None;
    }
    Some(Elsewhere {
        what: format!(
            "record {} holds {}, not {want}",
            dns.name,
            holds.unwrap_or_else(|| "nothing".to_owned())
        ),
        holder: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Address, InstanceState, Route, Tag};
    use crate::test_fixtures::{instance, settings, world};

    fn replacement(tags: &[(&str, &str)]) -> Instance {
        let mut r = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        r.tags.extend(tags.iter().map(|(k, v)| Tag::new(*k, *v)));
        r
    }

    fn resuming(r: &Instance) -> Situation {
        Situation::Continue {
            replacement: Box::new(r.clone()),
            failed: None,
            failed_id: Some("i-old".into()),
            why: ContinueReason::SameIncident,
        }
    }

    fn ip_on(w: &mut World, id: &str) {
        w.address = Some(Address {
            allocation_id: "eipalloc-1".into(),
            public_ip: "203.0.113.10".into(),
            instance_id: Some(id.into()),
            network_interface_id: None,
        });
    }

    /// The failed instance i-old (running) and the replacement `r`, which
    /// the managed route points at.
    fn with(r: &Instance) -> World {
        let old = instance("i-old", InstanceState::Running, "ap-northeast-1a");
        let mut w = world(vec![old, r.clone()]);
        w.route_tables[0].routes = vec![Route {
            destination: "10.242.2.0/24".into(),
            target: RouteTarget::Instance(r.id.clone()),
            blackhole: false,
        }];
        w
    }

    #[test]
    fn after_its_move_a_floating_ip_found_elsewhere_was_moved_by_hand() {
        let s = settings();
        let r = replacement(&[(TAG_MOVED_AT, "2026-11-21T09:01:00Z")]);
        let mut w = with(&r);
        ip_on(&mut w, "i-new");
        assert_eq!(hands(&w, &s, &resuming(&r), false), Hands::Ours);
        ip_on(&mut w, "i-old");
        let Hands::MovedByHand(found) = hands(&w, &s, &resuming(&r), false) else {
            panic!("moved by hand");
        };
        assert!(found[0].contains("is on i-old"), "{found:?}");
    }

    #[test]
    fn before_its_move_completes_the_incident_is_ours_unless_a_finish_meets_a_running_holder() {
        let s = settings();
        let r = replacement(&[]);
        let mut w = with(&r);
        ip_on(&mut w, "i-old");
        // An alarm's run (or its retry) moves the IP off the failed instance.
        assert_eq!(hands(&w, &s, &resuming(&r), false), Hands::Ours);
        // A reconcile finishing it leaves the IP on a running instance...
        assert!(matches!(
            hands(&w, &s, &resuming(&r), true),
            Hands::HeldByRunning(found) if found[0].contains("is on i-old")
        ));
        // ... and takes it from a stopped one.
        for i in w.instances.iter_mut().filter(|i| i.id == "i-old") {
            i.state = InstanceState::Stopped;
        }
        assert_eq!(hands(&w, &s, &resuming(&r), true), Hands::Ours);
    }

    #[test]
    fn a_handed_over_incident_stays_handed_over_and_another_incident_is_not_concerned() {
        let s = settings();
        let r = replacement(&[(TAG_HANDED_OVER, "2026-11-21T10:00:00Z")]);
        let w = with(&r);
        assert_eq!(
            hands(&w, &s, &resuming(&r), false),
            Hands::HandedOver("2026-11-21T10:00:00Z".into())
        );
        let other = Situation::Continue {
            why: ContinueReason::Cooldown {
                incident: "alarm-x".into(),
                age: std::time::Duration::from_secs(60),
            },
            replacement: Box::new(r),
            failed: None,
            failed_id: None,
        };
        assert_eq!(hands(&w, &s, &other, false), Hands::Ours);
    }
}
