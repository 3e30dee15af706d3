//! The Lambda binary: tracing, settings and SDK clients once, then serve events.

// The failover future nests deeply (join of steps inside the runtime's service).
#![recursion_limit = "256"]

use aws_config::Region;
use std::sync::Arc;

use ec2_failover::cloud::notices::ToldMemory;
use ec2_failover::cloud::sdk::{self, SdkAnnouncer, SdkCloud, SdkLeases};
use ec2_failover::lease::Locks;
use ec2_failover::notify::Notifier;
use ec2_failover::{Fleet, Invocation, config, groups, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON lines when Lambda's log format is JSON, plain text otherwise.
    lambda_runtime::tracing::init_default_subscriber();

    // FAILOVER_GROUPS, or the single-appliance variables as one group.
    let groups = groups::from_lookup(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let alarm_region = config::alarm_region(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let locking = config::lock_settings(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let notify = config::notify_settings(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let base = sdk::production_loader().load().await;
    // One set of clients per region, built now and reused by every invocation.
    let fleet = Fleet::new(groups, |region| match region {
        Some(r) => SdkCloud::from_conf(
            &base.to_builder().region(Region::new(r.to_owned())).build(),
            &alarm_region,
        ),
        None => SdkCloud::from_conf(&base, &alarm_region),
    });
    let fleet = around(fleet, &base, locking, notify);
    for m in &fleet.members {
        tracing::info!(
            group = %m.group.name,
            region = m.group.settings.appliance.target_region.as_deref()
                .or(base.region().map(|r| r.as_ref()))
                .unwrap_or("unset"),
            instance = %m.group.settings.appliance.instance_name,
            dry_run = m.group.settings.dry_run,
            "ec2-failover ready"
        );
    }
    let fleet = &fleet;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_context(&event.context);
        handle(fleet, &event.payload, &invocation).await
    }))
    .await
}

/// The fleet with what its groups share: the lease table (which also
/// remembers what was told) and the notifier. Both are in the function's own
/// region, whatever the groups'.
fn around(
    fleet: Fleet<SdkCloud>,
    base: &aws_config::SdkConfig,
    locking: Option<config::LockSettings>,
    notify: config::NotifySettings,
) -> Fleet<SdkCloud> {
    let leases = locking.map(|l| (Arc::new(SdkLeases::new(base, &l.table)), l.wait));
    let fleet = match &leases {
        Some((table, wait)) => fleet
            .with_locks(Locks::new(table.clone(), *wait))
            .with_pauses(table.clone()),
        None => {
            tracing::warn!(
                "LOCK_TABLE is not set: only a reserved concurrency of 1 keeps two jobs of one group apart"
            );
            fleet
        }
    };
    if !notify.any() {
        return fleet;
    }
    let out = SdkAnnouncer::new(base, notify.topic_arn, notify.event_bus);
    let memory = leases.map(|(table, _)| table as Arc<dyn ToldMemory>);
    fleet.with_notifier(Notifier::new(Arc::new(out), memory))
}
