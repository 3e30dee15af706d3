//! The Lambda binary: tracing, settings and SDK clients once, then serve events.

// The failover future nests deeply (join of steps inside the runtime's service).
#![recursion_limit = "256"]

use aws_config::{BehaviorVersion, Region};
use ec2_failover::cloud::sdk::SdkCloud;
use ec2_failover::{App, Invocation, Settings, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON lines when Lambda's log format is JSON, plain text otherwise.
    lambda_runtime::tracing::init_default_subscriber();

    let settings =
        Settings::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.target_region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    tracing::info!(
        region = sdk.region().map(|r| r.as_ref()).unwrap_or("unset"),
        instance = %settings.instance_name,
        dry_run = settings.dry_run,
        "ec2-failover ready"
    );
    let app = App {
        cloud: SdkCloud::from_conf(&sdk),
        settings,
    };
    let app = &app;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_context(&event.context);
        handle(app, &event.payload, &invocation).await
    }))
    .await
}
