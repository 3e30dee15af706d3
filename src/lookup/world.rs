//! The appliance's world: one round of concurrent, tag-filtered describes,
//! which the failover decides on, the standby's upkeep keeps its standby by
//! and preflight proves a failover against.
//!
//! Every describe filters server-side by a `Name` tag (or the floating IP's
//! address), so none of them grows with the number of instances in the account.
//! The VPC is not known before the round, so results are narrowed to the VPC
//! here instead of in a second round of calls.

use crate::cloud::provenance;
use crate::cloud::{
    Address, Cloud, CloudError, Image, Instance, RecordSet, RouteTable, RouteTarget, SecurityGroup,
    Subnet, Vpc, tag_value,
};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::lookup;
use crate::step::Step;

/// What the failover found, already narrowed to the configured VPC.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub vpc_id: String,
    /// Instances with the protected `Name` tag, not terminated, in the VPC:
    /// the appliance and what it replaced, never a standby.
    pub instances: Vec<Instance>,
    /// Standbys ([`Instance::is_standby`]) of the appliance, in the VPC.
    pub standbys: Vec<Instance>,
    pub subnets: Vec<Subnet>,
    /// Subnets of the other legs (`SUBNET_NAMES` after the first), in the VPC.
    pub leg_subnets: Vec<Subnet>,
    /// Route tables named `ROUTE_TABLE_NAME` (empty when no `ROUTE_CIDRS`).
    pub route_tables: Vec<RouteTable>,
    /// Available images owned by the account and tagged `AMI_NAME`, that
    /// EC2 says were made of the appliance's lineage or `BASE_AMI_ID` names
    /// ([`provenance::trusted`]): the only ones a launch may use.
    pub images: Vec<Image>,
    /// Those tagged `AMI_NAME` that are neither: never launched, and named
    /// by preflight and by a failover that finds no other.
    pub untrusted_images: Vec<Image>,
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

    /// The instance the floating IP or one of the managed routes points at.
    pub fn serving(&self, settings: &Settings) -> Option<&Instance> {
        let by_ip = self
            .address
            .as_ref()
            .and_then(|a| a.instance_id.as_deref())
            .and_then(|id| self.instance(id));
        by_ip.or_else(|| {
            self.route_tables.iter().find_map(|t| {
                settings.failover.route_cidrs.iter().find_map(|c| {
                    let route = t.route_to(c)?;
                    self.instances.iter().find(|i| match &route.target {
                        RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x) => {
                            i.owns_target(x)
                        }
                        _ => false,
                    })
                })
            })
        })
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
        let standbys: String = self
            .standbys
            .iter()
            .map(|i| {
                format!(
                    "; standby {} ({}, {})",
                    i.id,
                    i.state.as_str(),
                    i.availability_zone
                )
            })
            .collect();
        format!(
            "{}: instances [{}]{standbys}; {} subnet(s) in [{}]; {} route table(s); {} usable AMI(s); {}",
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

/// What the round of describes answered, before it is narrowed to the VPC.
struct Answers {
    vpcs: Result<Vec<Vpc>, CloudError>,
    instances: Result<Vec<Instance>, CloudError>,
    subnets: Result<Vec<Subnet>, CloudError>,
    tables: Result<Vec<RouteTable>, CloudError>,
    images: Result<Vec<Image>, CloudError>,
    /// Those `AMI_OWNERS` published (none asked without).
    published: Result<Vec<Image>, CloudError>,
    address: Result<Option<Address>, CloudError>,
    groups: Result<Option<Vec<SecurityGroup>>, CloudError>,
    records: Result<Option<Vec<RecordSet>>, CloudError>,
}

/// One round of concurrent describes: everything a failover needs to decide.
pub async fn look<E: Cloud>(ec2: &E, s: &Settings) -> Result<World, FailoverError> {
    let floating_ip = s.failover.floating_ip.map(|ip| ip.to_string());
    let owners = &s.appliance.ami_owners;
    let (vpcs, instances, subnets, tables, images, published, address, groups, records) = tokio::join!(
        ec2.vpcs_named(&s.appliance.vpc_name),
        ec2.instances_named(&s.appliance.instance_name),
        ec2.subnets_named(&s.failover.subnet_names),
        async {
            if s.failover.route_cidrs.is_empty() {
                Ok(Vec::new())
            } else {
                ec2.route_tables_named(&s.failover.route_table_name).await
            }
        },
        ec2.images_named(&s.appliance.ami_name),
        async {
            match owners.is_empty() {
                true => Ok(Vec::new()),
                false => ec2.images_published(owners, &s.appliance.ami_name).await,
            }
        },
        async {
            match &floating_ip {
                Some(ip) => ec2.address(ip).await,
                None => Ok(None),
            }
        },
        async {
            match &s.failover.security_group_name {
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
    let answers = Answers {
        vpcs,
        instances,
        subnets,
        tables,
        images,
        published,
        address,
        groups,
        records,
    };
    let mut world = World::from_answers(answers, s)?;
    world.add_unlisted(ec2, s).await?;
    Ok(world)
}

/// A failed describe, named by what it looked for.
fn seen<T>(answer: Result<T, CloudError>, what: String) -> Result<T, FailoverError> {
    answer.map_err(FailoverError::during(Step::Discover, what))
}

impl World {
    /// Instance ids the floating IP or a managed route names that the
    /// tag-filtered describe did not list.
    fn unlisted(&self, s: &Settings) -> Vec<String> {
        let by_ip = self.address.as_ref().and_then(|a| a.instance_id.clone());
        let by_route = self.route_tables.iter().flat_map(|t| {
            s.failover
                .route_cidrs
                .iter()
                .filter_map(|c| match &t.route_to(c)?.target {
                    RouteTarget::Instance(id) => Some(id.clone()),
                    _ => None,
                })
        });
        let mut ids: Vec<String> = by_ip
            .into_iter()
            .chain(by_route)
            .filter(|id| self.instance(id).is_none())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// EC2 lists a new instance under its tags only after a while (eventual
    /// consistency): a replacement that already holds the floating IP or a
    /// route may be missing from the tag-filtered look. Such instances are
    /// described by id, so a redelivery right after a failover still sees it.
    async fn add_unlisted<E: Cloud>(&mut self, ec2: &E, s: &Settings) -> Result<(), FailoverError> {
        for id in self.unlisted(s) {
            let found = seen(ec2.instance(&id).await, format!("instance {id}"))?;
            if let Some(i) = found.filter(|i| {
                i.vpc_id.as_deref() == Some(self.vpc_id.as_str())
                    && i.tag("Name") == Some(s.appliance.instance_name.as_str())
                    && !i.state.is_gone()
            }) {
                self.instances.push(i);
            }
        }
        Ok(())
    }

    /// Narrows the answers to the one VPC and checks that what the
    /// configuration names exists, before anything is changed.
    fn from_answers(a: Answers, s: &Settings) -> Result<World, FailoverError> {
        let vpc_id = lookup::one_vpc(
            seen(a.vpcs, format!("VPC tagged Name={}", s.appliance.vpc_name))?,
            &s.appliance.vpc_name,
        )?;
        let in_vpc = |v: &str| v == vpc_id;
        let instances = seen(
            a.instances,
            format!("instances tagged Name={}", s.appliance.instance_name),
        )?;
        let subnets = seen(
            a.subnets,
            format!(
                "subnets tagged Name={}",
                s.failover.subnet_names.join(" or ")
            ),
        )?;
        let (subnets, leg_subnets): (Vec<Subnet>, Vec<Subnet>) = subnets
            .into_iter()
            .filter(|x| in_vpc(&x.vpc_id))
            .partition(|x| tag_value(&x.tags, "Name") == Some(s.failover.subnet_name.as_str()));
        let tables = seen(
            a.tables,
            format!("route tables tagged Name={}", s.failover.route_table_name),
        )?;
        let route_tables: Vec<RouteTable> =
            tables.into_iter().filter(|t| in_vpc(&t.vpc_id)).collect();
        if !s.failover.route_cidrs.is_empty() && route_tables.is_empty() {
            return Err(FailoverError::Missing {
                what: format!(
                    "ROUTE_CIDRS is set but no route table in {vpc_id} is tagged Name={} (ROUTE_TABLE_NAME)",
                    s.failover.route_table_name
                ),
            });
        }
        let (standbys, instances) = lookup::in_vpc(instances, &vpc_id)
            .into_iter()
            .partition(Instance::is_standby);
        let mut world = World {
            instances,
            standbys,
            subnets,
            leg_subnets,
            route_tables,
            images: seen(
                a.images,
                format!("AMIs tagged Name={}", s.appliance.ami_name),
            )?,
            untrusted_images: Vec::new(),
            address: floating_ip(a.address, s)?,
            security_group_ids: security_groups(a.groups, s, &vpc_id)?,
            dns_records: dns_records(a.records),
            vpc_id,
        };
        world.sort_images(a.published, s)?;
        Ok(world)
    }
}

impl World {
    /// The AMIs a launch may use: the account's own that EC2 says were made
    /// of the appliance's lineage or that `BASE_AMI_ID` names, and what an
    /// owner `AMI_OWNERS` trusts published. The account's others go to
    /// `untrusted_images`: a tag anyone may write must not choose what runs
    /// with the appliance's role and routes.
    fn sort_images(
        &mut self,
        published: Result<Vec<Image>, CloudError>,
        s: &Settings,
    ) -> Result<(), FailoverError> {
        // What serves now; with nothing serving, the one live instance.
        let live: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| i.state.is_live())
            .collect();
        let appliance = match (self.serving(s), live.as_slice()) {
            (Some(serving), _) => Some(serving.id.as_str()),
            (None, [one]) => Some(one.id.as_str()),
            (None, _) => None,
        };
        let lineage = provenance::lineage(self.instances.iter().chain(&self.standbys), appliance);
        let vouched = &s.appliance.base_ami_ids;
        let (trusted, untrusted): (Vec<Image>, Vec<Image>) = std::mem::take(&mut self.images)
            .into_iter()
            .partition(|i| provenance::trusted(i, &lineage, vouched));
        let what = format!(
            "AMIs named {}* published by AMI_OWNERS",
            s.appliance.ami_name
        );
        self.images = trusted;
        self.images.extend(seen(published, what)?);
        self.untrusted_images = untrusted;
        Ok(())
    }
}

/// The floating IP, which must exist when configured.
fn floating_ip(
    answer: Result<Option<Address>, CloudError>,
    s: &Settings,
) -> Result<Option<Address>, FailoverError> {
    let Some(ip) = s.failover.floating_ip else {
        return Ok(None);
    };
    match seen(answer, format!("Elastic IP {ip}"))? {
        Some(address) => Ok(Some(address)),
        None => Err(FailoverError::Missing {
            what: format!("FLOATING_IP {ip} is not an Elastic IP of this account and region"),
        }),
    }
}

/// The ids of the groups named `SECURITY_GROUP_NAME` in the VPC, when configured.
fn security_groups(
    answer: Result<Option<Vec<SecurityGroup>>, CloudError>,
    s: &Settings,
    vpc_id: &str,
) -> Result<Option<Vec<String>>, FailoverError> {
    let Some(name) = &s.failover.security_group_name else {
        return Ok(None);
    };
    let groups = seen(answer, format!("security group {name}"))?.unwrap_or_default();
    let ids: Vec<String> = groups
        .into_iter()
        .filter(|g| g.vpc_id.as_deref() == Some(vpc_id))
        .map(|g| g.id)
        .collect();
    if ids.is_empty() {
        return Err(FailoverError::Missing {
            what: format!("no security group named {name} in {vpc_id} (SECURITY_GROUP_NAME)"),
        });
    }
    Ok(Some(ids))
}

/// A Route 53 hiccup (or a missing permission) must not keep the appliance
/// down: the DNS step then UPSERTs without having looked, which is safe.
fn dns_records(
    answer: Result<Option<Vec<RecordSet>>, CloudError>,
) -> Option<Result<Vec<RecordSet>, CloudError>> {
    let records = answer.transpose();
    if let Some(Err(e)) = &records {
        tracing::warn!(error = %e, "could not look at the DNS record; it will be upserted blind");
    }
    records
}
