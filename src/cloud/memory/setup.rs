//! Building a world: the calls a test makes to put VPCs, instances, images,
//! addresses, zones and health checks into the account, and to make EC2
//! slow, forgetful or unwilling where a test needs it.

use chrono::{DateTime, TimeDelta, Utc};

use super::launch::{credits_applied, metadata_applied};
use super::network::rule_key;
use super::records::{
    AddressRec, GroupRec, HealthCheckRec, ImageRec, InstanceRec, SubnetRec, TableRec, VpcRec,
    ZoneRec,
};
use super::route53::fqdn;
use super::{
    CHECKER_FAILURE, CHECKER_SUCCESS, DEFAULT_CHECKERS, ImageSpec, InstanceSpec, MemoryCloud,
};
use crate::cloud::{
    Address, Alarm, Cidr, IngressRule, InstanceState, Operation, RecordSet, RouteTarget, Tag,
};

impl MemoryCloud {
    /// A VPC tagged `Name=name`; returns its id.
    pub fn add_vpc(&self, name: &str, cidr: Cidr) -> String {
        let mut s = self.lock();
        let id = s.new_id("vpc");
        s.vpcs.push(VpcRec {
            id: id.clone(),
            cidr,
            tags: vec![Tag::new("Name", name)],
        });
        id
    }

    /// A subnet of `vpc_id` in `az`, tagged `Name=name`; returns its id.
    pub fn add_subnet(&self, vpc_id: &str, az: &str, cidr: Cidr, name: &str) -> String {
        let mut s = self.lock();
        assert!(
            s.vpcs.iter().any(|v| v.id == vpc_id),
            "add_subnet: no VPC {vpc_id}"
        );
        let id = s.new_id("subnet");
        s.subnets.push(SubnetRec {
            id: id.clone(),
            vpc_id: vpc_id.to_owned(),
            availability_zone: az.to_owned(),
            cidr,
            tags: vec![Tag::new("Name", name)],
            next_host: 4,
        });
        id
    }

    /// An internet gateway attached to `vpc_id`; returns its id.
    pub fn add_internet_gateway(&self, vpc_id: &str) -> String {
        let mut s = self.lock();
        let id = s.new_id("igw");
        s.gateways.push((id.clone(), vpc_id.to_owned()));
        id
    }

    /// A route table of `vpc_id` tagged `Name=name`, with its `local` route.
    pub fn add_route_table(&self, vpc_id: &str, name: &str) -> String {
        let mut s = self.lock();
        let cidr = s
            .vpcs
            .iter()
            .find(|v| v.id == vpc_id)
            .map(|v| v.cidr)
            .unwrap_or_else(|| panic!("add_route_table: no VPC {vpc_id}"));
        let id = s.new_id("rtb");
        s.tables.push(TableRec {
            id: id.clone(),
            vpc_id: vpc_id.to_owned(),
            tags: vec![Tag::new("Name", name)],
            routes: vec![(cidr, RouteTarget::Other("local".to_owned()))],
        });
        id
    }

    /// A route, whatever its target (an instance, an interface, a gateway).
    pub fn add_route(&self, table_id: &str, destination: Cidr, target: RouteTarget) {
        let mut s = self.lock();
        let t = s
            .tables
            .iter_mut()
            .find(|t| t.id == table_id)
            .unwrap_or_else(|| panic!("add_route: no route table {table_id}"));
        assert!(
            !t.routes.iter().any(|(c, _)| *c == destination),
            "add_route: {table_id} already routes {destination}"
        );
        t.routes.push((destination, target));
    }

    /// A security group named `name` in `vpc_id`, without rules.
    pub fn add_security_group(&self, vpc_id: &str, name: &str) -> String {
        let mut s = self.lock();
        assert!(
            !s.groups
                .iter()
                .any(|g| g.vpc_id == vpc_id && g.name == name),
            "add_security_group: {vpc_id} already has a group named {name}"
        );
        let id = s.new_id("sg");
        s.groups.push(GroupRec {
            id: id.clone(),
            name: name.to_owned(),
            vpc_id: vpc_id.to_owned(),
            tags: Vec::new(),
            rules: Vec::new(),
        });
        id
    }

    /// An ingress rule, as a person or another tool would add it.
    pub fn add_ingress(&self, group_id: &str, rule: IngressRule) {
        let mut s = self.lock();
        let g = s
            .groups
            .iter_mut()
            .find(|g| g.id == group_id)
            .unwrap_or_else(|| panic!("add_ingress: no security group {group_id}"));
        assert!(
            !g.rules.iter().any(|r| rule_key(r) == rule_key(&rule)),
            "add_ingress: EC2 would refuse a duplicate of {rule:?}"
        );
        g.rules.push(rule);
    }

    pub fn add_key_pair(&self, name: &str) {
        let mut s = self.lock();
        if !s.key_pairs.iter().any(|k| k == name) {
            s.key_pairs.push(name.to_owned());
        }
    }

    /// DeleteKeyPair: instances launched with it keep running, but no new
    /// instance can be launched with it.
    pub fn remove_key_pair(&self, name: &str) {
        self.lock().key_pairs.retain(|k| k != name);
    }

    /// An instance as described; returns its id.
    pub fn add_instance(&self, spec: InstanceSpec) -> String {
        let mut s = self.lock();
        let subnet = s
            .subnets
            .iter()
            .position(|x| x.id == spec.subnet_id)
            .unwrap_or_else(|| panic!("add_instance: no subnet {}", spec.subnet_id));
        if let Some(k) = &spec.key_name
            && !s.key_pairs.contains(k)
        {
            s.key_pairs.push(k.clone());
        }
        let id = s.new_id("i");
        let eni = s.new_id("eni");
        let volumes = (0..spec.volumes.max(1)).map(|_| s.new_id("vol")).collect();
        let private_ip = s.private_ip(subnet);
        let legs = (1..)
            .zip(spec.legs)
            .map(|(d, (subnet, groups))| (d, subnet, groups))
            .collect();
        let legs = s.new_legs(legs);
        let launch_time = spec.launch_time.unwrap_or_else(|| s.now());
        let sub = &s.subnets[subnet];
        let cpu_credits = credits_applied(&spec.instance_type, spec.cpu_credits.as_deref());
        let record = InstanceRec {
            id: id.clone(),
            state: spec.state,
            vpc_id: sub.vpc_id.clone(),
            subnet_id: sub.id.clone(),
            availability_zone: sub.availability_zone.clone(),
            instance_type: spec.instance_type,
            image_id: spec.image_id,
            key_name: spec.key_name,
            iam_instance_profile_arn: spec.iam_instance_profile_arn,
            security_group_ids: spec.security_group_ids,
            eni,
            private_ip,
            own_public_ip: spec.public_ip,
            source_dest_check: spec.source_dest_check,
            launch_time,
            first_launch: launch_time,
            state_reason: None,
            transition_reason: String::new(),
            stop_ends: None,
            tags: spec.tags,
            volumes,
            pending_looks: 0,
            stale: Default::default(),
            unlisted_looks: 0,
            metadata_options: metadata_applied(Some(&spec.metadata_options)),
            ebs_optimized: spec.ebs_optimized,
            user_data: spec.user_data,
            cpu_credits,
            legs,
            client_token: spec.client_token,
        };
        s.instances.push(record);
        id
    }

    /// An AMI as described, with its (untagged) snapshots; returns its id.
    pub fn add_image(&self, spec: ImageSpec) -> String {
        let mut s = self.lock();
        assert!(
            !(spec.owned && s.images.iter().any(|i| i.owned && i.name == spec.name)),
            "add_image: EC2 would refuse a second AMI named {}",
            spec.name
        );
        let id = s.new_id("ami");
        let of = spec.source_instance_id.as_deref();
        let snapshot_ids = (0..spec.snapshots)
            .map(|_| s.new_snapshot(&id, of))
            .collect();
        let creation_date = match spec.creation_date {
            Some(t) => t,
            None => s.now(),
        };
        s.images.push(ImageRec {
            id: id.clone(),
            name: spec.name,
            state: spec.state,
            creation_date,
            tags: spec.tags,
            snapshot_ids,
            owned: spec.owned,
            pending_looks: 0,
            source_instance_id: spec.source_instance_id,
            publisher: spec.publisher,
        });
        id
    }

    /// Tags resources, as CreateTags does (a builder shortcut).
    pub fn tag(&self, resource_ids: &[&str], tags: &[(&str, &str)]) {
        let ids: Vec<String> = resource_ids.iter().map(|r| (*r).to_owned()).collect();
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect();
        if let Err(e) = self.lock().create_tags(&ids, &tags) {
            panic!("tag: {e}");
        }
    }

    /// Allocates an Elastic IP, associated with `instance_id` when given.
    pub fn add_address(&self, instance_id: Option<&str>) -> Address {
        let mut s = self.lock();
        if let Some(i) = instance_id {
            assert!(
                s.instances.iter().any(|x| x.id == i),
                "add_address: no instance {i}"
            );
        }
        let allocation_id = s.new_id("eipalloc");
        let n = s.addresses.len();
        let public_ip = format!("203.0.113.{}", 10 + n);
        let network_interface_id = instance_id.and_then(|i| {
            s.instances
                .iter()
                .find(|x| x.id == i)
                .map(|x| x.eni.clone())
        });
        s.addresses.push(AddressRec {
            allocation_id: allocation_id.clone(),
            public_ip: public_ip.clone(),
            instance_id: instance_id.map(str::to_owned),
            eni: network_interface_id.clone(),
        });
        Address {
            allocation_id,
            public_ip,
            instance_id: instance_id.map(str::to_owned),
            network_interface_id,
        }
    }

    /// A public hosted zone; returns its id (without `/hostedzone/`).
    pub fn add_hosted_zone(&self, name: &str) -> String {
        let mut s = self.lock();
        let n = s.next();
        let id = format!("Z{n:016X}");
        s.zones.push(ZoneRec {
            id: id.clone(),
            name: fqdn(name),
            records: Vec::new(),
        });
        id
    }

    /// An A record set (simple, routing-policy or alias) in a zone.
    pub fn add_record(&self, zone_id: &str, mut record: RecordSet) {
        let mut s = self.lock();
        let z = s
            .zone_index(Operation::ChangeResourceRecordSets, zone_id)
            .unwrap_or_else(|e| panic!("add_record: {e}"));
        record.name = fqdn(&record.name);
        s.zones[z].records.push(record);
    }

    /// A metric alarm, or its new state: `state` since `at` (both timestamps,
    /// as CloudWatch reports a transition).
    pub fn set_alarm(&self, alarm: Alarm) {
        let mut s = self.lock();
        s.alarms.retain(|a| a.name != alarm.name);
        s.alarms.push(alarm);
    }

    /// The snapshots of `image` are encrypted with this KMS key.
    pub fn encrypt_image(&self, image: &str, kms_key_id: &str) {
        let mut s = self.lock();
        let ids: Vec<String> = s
            .images
            .iter()
            .filter(|i| i.id == image)
            .flat_map(|i| i.snapshot_ids.clone())
            .collect();
        for snap in s.snapshots.iter_mut().filter(|x| ids.contains(&x.id)) {
            snap.kms_key_id = Some(kms_key_id.to_owned());
        }
    }

    /// EBS encryption by default on, as EnableEbsEncryptionByDefault and
    /// ModifyEbsDefaultKmsKeyId set it: every new volume is encrypted with
    /// `key` (`None`: the AWS managed key, `alias/aws/ebs`).
    pub fn encrypt_volumes_by_default(&self, key: Option<&str>) {
        let mut s = self.lock();
        s.ebs_encryption_by_default = true;
        s.ebs_default_key = key.map(str::to_owned);
    }

    /// The function's role may not use this KMS key (no grant on it): a launch
    /// whose volumes EC2 encrypts with it dies on launch.
    pub fn forbid_kms_key(&self, key: &str) {
        self.lock().unusable_keys.push(key.to_owned());
    }

    /// IAM denies `operation` (`RunInstances`, ...): its dry run answers
    /// `UnauthorizedOperation`. (Only dry runs consult it.)
    pub fn deny(&self, operation: &str) {
        self.lock().denied.push(operation.to_owned());
    }

    /// A plain stop of this instance leaves it `stopping` for good; only a
    /// forced stop brings it down.
    pub fn stick_when_stopped(&self, instance_id: &str) {
        self.lock().stuck_stopping.push(instance_id.to_owned());
    }

    /// A plain stop keeps an instance `stopping` for `d` by the world's clock
    /// (a guest shutting down), then it is `stopped`; a forced stop still
    /// ends at once. Zero (the default): stopped at once.
    pub fn set_stop_takes(&self, d: std::time::Duration) {
        self.lock().stop_takes = TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    }

    /// Lets `d` pass on the world's clock: stops under way end, new times are
    /// later. (The function's own clock is the wall clock.)
    pub fn pass_time(&self, d: std::time::Duration) {
        self.lock().ahead += TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    }

    /// A health check with `port` (none for calculated ones), every checker healthy.
    pub fn add_health_check(&self, id: &str, port: Option<u16>) {
        let mut s = self.lock();
        s.health_checks.push(HealthCheckRec {
            id: id.to_owned(),
            port,
            statuses: vec![CHECKER_SUCCESS.to_owned(); DEFAULT_CHECKERS],
        });
    }

    /// What the checkers of a health check report now: `healthy` of `total` succeed.
    pub fn set_health(&self, id: &str, healthy: usize, total: usize) {
        let mut s = self.lock();
        let h = s
            .health_checks
            .iter_mut()
            .find(|h| h.id == id)
            .unwrap_or_else(|| panic!("set_health: no health check {id}"));
        h.statuses = (0..total)
            .map(|n| {
                if n < healthy {
                    CHECKER_SUCCESS
                } else {
                    CHECKER_FAILURE
                }
                .to_owned()
            })
            .collect();
    }

    /// The ranges `GetCheckerIpRanges` answers from now on.
    pub fn set_checker_ranges(&self, ranges: &[Cidr]) {
        self.lock().checker_ranges = ranges.to_vec();
    }

    /// New instances stay `pending` for this many DescribeInstances calls after
    /// the RunInstances answer (0, the default: running from the first look).
    pub fn set_launch_pending_looks(&self, looks: usize) {
        self.lock().launch_pending_looks = looks;
    }

    /// After a StartInstances, this many DescribeInstances calls still read
    /// the instance `stopped` (EC2's eventual consistency; 0, the default:
    /// `pending` from the first look).
    pub fn set_stale_start_looks(&self, looks: usize) {
        self.lock().stale_start_looks = looks;
    }

    /// New AMIs stay `pending` (without snapshots listed) for this many
    /// DescribeImages calls (0, the default: `available` at once).
    pub fn set_image_pending_looks(&self, looks: usize) {
        self.lock().image_pending_looks = looks;
    }

    /// DescribeInstances filtered by tag does not list a new instance for this
    /// many calls after its launch (EC2's eventual consistency); by id it does.
    pub fn set_listing_lag(&self, looks: usize) {
        self.lock().listing_lag = looks;
    }

    /// The next launches, one per reason, are accepted by RunInstances and then
    /// terminated by EC2 with that StateReason (e.g. a KMS key it cannot use:
    /// `Client.InternalError: Client error on launch`).
    pub fn kill_next_launches(&self, reasons: &[&str]) {
        self.lock().launch_deaths = reasons.iter().map(|r| (*r).to_owned()).collect();
    }

    /// An operator stopped and started the instance at `at`: EC2 resets its
    /// LaunchTime, but not its primary network interface's attach time.
    pub fn restart(&self, instance_id: &str, at: DateTime<Utc>) {
        let mut s = self.lock();
        if let Some(i) = s.instances.iter_mut().find(|i| i.id == instance_id) {
            i.launch_time = at;
            i.state = InstanceState::Running;
            i.transition_reason.clear();
        }
    }

    /// Inbound rules allowed per group and IP family (EC2's default is 60).
    pub fn set_rule_limit(&self, limit: usize) {
        self.lock().rule_limit = limit;
    }

    /// Source/dest check off on an instance's other interface, as an
    /// operator deploys a gateway's LAN leg.
    pub fn disable_leg_source_dest_check(&self, interface_id: &str) {
        self.lock()
            .disable_interface_source_dest_check(interface_id)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
