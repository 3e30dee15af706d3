//! Discovery: one round of concurrent, tag-filtered describes.
//!
//! Every describe filters server-side by a `Name` tag (or the floating IP's
//! address), so none of them grows with the number of instances in the account.
//! The VPC is not known before the round, so results are narrowed to the VPC
//! here instead of in a second round of calls.

use crate::cloud::{
    Address, Cloud, CloudError, Image, Instance, RecordSet, RouteTable, Subnet, Vpc,
};
use crate::config::Settings;
use crate::error::FailoverError;

/// What the failover found, already narrowed to the configured VPC.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub vpc_id: String,
    /// Instances with the protected `Name` tag, not terminated, in the VPC.
    pub instances: Vec<Instance>,
    pub subnets: Vec<Subnet>,
    /// Route tables named `ROUTE_TABLE_NAME` (empty when no `ROUTE_CIDRS`).
    pub route_tables: Vec<RouteTable>,
    /// Available images owned by the account and tagged `AMI_NAME`.
    pub images: Vec<Image>,
    /// The floating IP, when configured and found.
    pub address: Option<Address>,
    /// Groups named `SECURITY_GROUP_NAME` in the VPC, when configured.
    pub security_group_ids: Option<Vec<String>>,
    /// The A record set(s) of `DNS_RECORD_NAME`, when DNS is configured; the
    /// error when Route 53 could not be asked (that must not stop a failover).
    pub dns_records: Option<Result<Vec<RecordSet>, CloudError>>,
}

impl World {
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// One line for the report: what was found.
    pub fn summary(&self) -> String {
        let ids: Vec<String> = self
            .instances
            .iter()
            .map(|i| format!("{} ({}, {})", i.id, i.state.as_str(), i.availability_zone))
            .collect();
        let mut azs: Vec<&str> = self
            .subnets
            .iter()
            .map(|s| s.availability_zone.as_str())
            .collect();
        azs.sort_unstable();
        azs.dedup();
        let floating = match &self.address {
            Some(a) => format!(
                "floating IP {} on {}",
                a.public_ip,
                a.instance_id.as_deref().unwrap_or("nothing")
            ),
            None => "no floating IP".to_owned(),
        };
        format!(
            "{}: instances [{}]; {} subnet(s) in [{}]; {} route table(s); {} usable AMI(s); {}",
            self.vpc_id,
            ids.join(", "),
            self.subnets.len(),
            azs.join(", "),
            self.route_tables.len(),
            self.images.len(),
            floating
        )
    }
}

/// The id of the one VPC tagged `VPC_NAME`; none or several is an error that
/// names them, before anything is changed.
pub fn one_vpc(vpcs: Vec<Vpc>, settings: &Settings) -> Result<String, FailoverError> {
    match vpcs.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(FailoverError::Missing {
            what: format!("no VPC is tagged Name={} (VPC_NAME)", settings.vpc_name),
        }),
        many => Err(FailoverError::Ambiguous {
            what: format!(
                "{} VPCs are tagged Name={} ({}); VPC_NAME must name exactly one",
                many.len(),
                settings.vpc_name,
                many.iter()
                    .map(|v| v.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

pub async fn discover<E: Cloud>(ec2: &E, s: &Settings) -> Result<World, FailoverError> {
    let floating_ip = s.floating_ip.map(|ip| ip.to_string());
    let (vpcs, instances, subnets, tables, images, address, groups, records) = tokio::join!(
        ec2.vpcs_named(&s.vpc_name),
        ec2.instances_named(&s.instance_name),
        ec2.subnets_named(&s.subnet_name),
        async {
            if s.route_cidrs.is_empty() {
                Ok(Vec::new())
            } else {
                ec2.route_tables_named(&s.route_table_name).await
            }
        },
        ec2.images_named(&s.ami_name),
        async {
            match &floating_ip {
                Some(ip) => ec2.address(ip).await,
                None => Ok(None),
            }
        },
        async {
            match &s.security_group_name {
                Some(name) => ec2.security_groups_named(name).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match &s.dns {
                Some(d) => ec2.a_records(&d.zone_id, &d.name).await.map(Some),
                None => Ok(None),
            }
        },
    );

    let vpcs = vpcs.map_err(FailoverError::during(
        "discover",
        format!("VPC tagged Name={}", s.vpc_name),
    ))?;
    let vpc_id = one_vpc(vpcs, s)?;
    let in_vpc = |v: Option<&str>| v == Some(vpc_id.as_str());

    let instances: Vec<Instance> = instances
        .map_err(FailoverError::during(
            "discover",
            format!("instances tagged Name={}", s.instance_name),
        ))?
        .into_iter()
        .filter(|i| in_vpc(i.vpc_id.as_deref()))
        .collect();
    let subnets: Vec<Subnet> = subnets
        .map_err(FailoverError::during(
            "discover",
            format!("subnets tagged Name={}", s.subnet_name),
        ))?
        .into_iter()
        .filter(|x| in_vpc(Some(&x.vpc_id)))
        .collect();
    let route_tables: Vec<RouteTable> = tables
        .map_err(FailoverError::during(
            "discover",
            format!("route tables tagged Name={}", s.route_table_name),
        ))?
        .into_iter()
        .filter(|t| in_vpc(Some(&t.vpc_id)))
        .collect();
    let images = images.map_err(FailoverError::during(
        "discover",
        format!("AMIs tagged Name={}", s.ami_name),
    ))?;
    let address = address.map_err(FailoverError::during(
        "discover",
        format!("Elastic IP {}", floating_ip.as_deref().unwrap_or_default()),
    ))?;
    let groups = groups.map_err(FailoverError::during(
        "discover",
        format!(
            "security group {}",
            s.security_group_name.as_deref().unwrap_or_default()
        ),
    ))?;

    // A Route 53 hiccup (or a missing permission) must not keep the appliance
    // down: the DNS step then UPSERTs without having looked, which is safe.
    let dns_records = records.transpose();
    if let Some(Err(e)) = &dns_records {
        tracing::warn!(error = %e, "could not look at the DNS record; it will be upserted blind");
    }

    // What the configuration names must exist before anything is changed.
    if let (Some(ip), None) = (&floating_ip, &address) {
        return Err(FailoverError::Missing {
            what: format!("FLOATING_IP {ip} is not an Elastic IP of this account and region"),
        });
    }
    if !s.route_cidrs.is_empty() && route_tables.is_empty() {
        return Err(FailoverError::Missing {
            what: format!(
                "ROUTE_CIDRS is set but no route table in {vpc_id} is tagged Name={} (ROUTE_TABLE_NAME)",
                s.route_table_name
            ),
        });
    }
    let security_group_ids = match (groups, &s.security_group_name) {
        (Some(groups), Some(name)) => {
            let ids: Vec<String> = groups
                .into_iter()
                .filter(|g| in_vpc(g.vpc_id.as_deref()))
                .map(|g| g.id)
                .collect();
            if ids.is_empty() {
                return Err(FailoverError::Missing {
                    what: format!(
                        "no security group named {name} in {vpc_id} (SECURITY_GROUP_NAME)"
                    ),
                });
            }
            Some(ids)
        }
        _ => None,
    };

    Ok(World {
        vpc_id,
        instances,
        subnets,
        route_tables,
        images,
        address,
        security_group_ids,
        dns_records,
    })
}
