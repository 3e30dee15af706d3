#!/usr/bin/env python3
"""Build and inspect the demo world of ec2-failover on a local moto server.

The world is the one of the seed article (a Sophos UTM VPN gateway in Tokyo):

    VPC "my-vpc" 10.0.0.0/16
      subnet "public" 10.0.1.0/24  ap-northeast-1a   <- the appliance lives here
      subnet "public" 10.0.2.0/24  ap-northeast-1c   <- the failover target
      route table "public": 0.0.0.0/0     -> internet gateway
                            10.242.2.0/24 -> the appliance (VPN client range)
      security group "sophos", key pair "ops"
      instance "sophos" (t3.small, source/dest check off) + Elastic IP (the floating IP)
      AMI "sophos" created from that instance
      instance "web" + its own Elastic IP (unrelated; must stay untouched)
    alarm "sophos-health" (CloudWatch, us-east-1) in ALARM, as the event says

Usage (with the venv's python, which has boto3):

    demo_world.py build --endpoint http://127.0.0.1:PORT   # prints KEY=VALUE lines
    demo_world.py show  --endpoint http://127.0.0.1:PORT   # prints the current state
    demo_world.py report [--expect OUTCOME] < answer.json   # pretty-prints a report

Progress messages go to stderr; `build` prints only the function's environment
variables on stdout, so a shell can capture and source them.
"""

import argparse
import json
import sys

import boto3

REGION = "ap-northeast-1"
VPC_NAME = "my-vpc"
SUBNET_NAME = "public"
ROUTE_TABLE_NAME = "public"
APPLIANCE_NAME = "sophos"
AMI_NAME = "sophos"
SECURITY_GROUP_NAME = "sophos"
KEY_NAME = "ops"
VPN_CLIENT_CIDR = "10.242.2.0/24"
DEFAULT_CIDR = "0.0.0.0/0"
WEB_NAME = "web"
# The alarm and health check events/sns-alarm.json names.
ALARM_NAME = "sophos-health"
# The groups' lease table (template.yaml's LockTable), as LOCK_TABLE.
LOCK_TABLE = "ec2-failover-locks"
HEALTH_CHECK_ID = "6f0c8d52-5a4e-4c1e-9a3b-2b7f1e0d9c11"


def ec2_client(endpoint):
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def lease_table(endpoint):
    """The lease table as the template makes it: partition key `group`, on demand."""
    dynamodb = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dynamodb.create_table(
        TableName=LOCK_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
    )
    log(f"lease table {LOCK_TABLE} (one job per group at a time)")
    print(f"LOCK_TABLE={LOCK_TABLE}")


def cloudwatch_client(endpoint):
    # Route 53's health-check metrics, and so their alarms, live in us-east-1.
    return boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def health_alarm(cw):
    """The alarm of events/sns-alarm.json, in ALARM: the function reads it again
    before it acts on the event (a late event of an alarm now OK is stale)."""
    cw.put_metric_alarm(
        AlarmName=ALARM_NAME,
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": HEALTH_CHECK_ID}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="LessThanThreshold",
    )
    cw.set_alarm_state(AlarmName=ALARM_NAME, StateValue="ALARM", StateReason="demo: health check failing")
    log(f"alarm {ALARM_NAME} (us-east-1) in ALARM")


def log(msg):
    print(f"  [world] {msg}", file=sys.stderr)


def name_tag(name):
    return [{"Key": "Name", "Value": name}]


def tag_spec(resource_type, name):
    return [{"ResourceType": resource_type, "Tags": name_tag(name)}]


def get_name(tags):
    for tag in tags or []:
        if tag["Key"] == "Name":
            return tag["Value"]
    return ""


def pick_base_image(ec2):
    """Any image moto already lists; prefer an x86_64 Amazon Linux one."""
    images = ec2.describe_images(Owners=["amazon"])["Images"] or ec2.describe_images()["Images"]
    if not images:
        raise SystemExit("moto lists no images to launch the appliance from")
    for image in images:
        if image.get("Architecture") == "x86_64" and "amzn" in (image.get("Name") or ""):
            return image["ImageId"]
    return images[0]["ImageId"]


def build(ec2):
    existing = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [VPC_NAME]}])["Vpcs"]
    if existing:
        raise SystemExit(f"a VPC named {VPC_NAME} already exists; build wants a fresh moto server")

    vpc_id = ec2.create_vpc(
        CidrBlock="10.0.0.0/16", TagSpecifications=tag_spec("vpc", VPC_NAME)
    )["Vpc"]["VpcId"]
    log(f"vpc {vpc_id} ({VPC_NAME})")

    subnets = {}
    for az, cidr in (("ap-northeast-1a", "10.0.1.0/24"), ("ap-northeast-1c", "10.0.2.0/24")):
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=az,
            TagSpecifications=tag_spec("subnet", SUBNET_NAME),
        )["Subnet"]["SubnetId"]
        subnets[az] = subnet_id
        log(f"subnet {subnet_id} ({SUBNET_NAME}, {az}, {cidr})")

    igw_id = ec2.create_internet_gateway(
        TagSpecifications=tag_spec("internet-gateway", VPC_NAME)
    )["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    log(f"internet gateway {igw_id}")

    rtb_id = ec2.create_route_table(
        VpcId=vpc_id, TagSpecifications=tag_spec("route-table", ROUTE_TABLE_NAME)
    )["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb_id, DestinationCidrBlock=DEFAULT_CIDR, GatewayId=igw_id)
    for subnet_id in subnets.values():
        ec2.associate_route_table(RouteTableId=rtb_id, SubnetId=subnet_id)
    log(f"route table {rtb_id} ({ROUTE_TABLE_NAME}): {DEFAULT_CIDR} -> {igw_id}")

    sg_id = ec2.create_security_group(
        GroupName=SECURITY_GROUP_NAME,
        Description="Sophos UTM VPN gateway",
        VpcId=vpc_id,
        TagSpecifications=tag_spec("security-group", SECURITY_GROUP_NAME),
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg_id,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS / SSL VPN"}]},
            {"IpProtocol": "udp", "FromPort": 500, "ToPort": 500,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "IKE"}]},
            {"IpProtocol": "udp", "FromPort": 4500, "ToPort": 4500,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "IPsec NAT-T"}]},
        ],
    )
    log(f"security group {sg_id} ({SECURITY_GROUP_NAME})")

    ec2.create_key_pair(KeyName=KEY_NAME)
    log(f"key pair {KEY_NAME}")

    base_image = pick_base_image(ec2)
    appliance_id = ec2.run_instances(
        ImageId=base_image,
        InstanceType="t3.small",
        MinCount=1,
        MaxCount=1,
        KeyName=KEY_NAME,
        SubnetId=subnets["ap-northeast-1a"],
        SecurityGroupIds=[sg_id],
        TagSpecifications=tag_spec("instance", APPLIANCE_NAME),
    )["Instances"][0]["InstanceId"]
    # A VPN gateway / NAT instance forwards traffic that is not addressed to it.
    ec2.modify_instance_attribute(InstanceId=appliance_id, SourceDestCheck={"Value": False})
    log(f"instance {appliance_id} ({APPLIANCE_NAME}, t3.small, from {base_image}, source/dest check off)")

    ami_id = ec2.create_image(
        InstanceId=appliance_id,
        Name="sophos-20261121-0300",
        Description="nightly image of the Sophos UTM appliance",
        TagSpecifications=tag_spec("image", AMI_NAME),
    )["ImageId"]
    # Tag again explicitly, in case the emulator ignores TagSpecifications on CreateImage.
    ec2.create_tags(Resources=[ami_id], Tags=name_tag(AMI_NAME))
    log(f"image {ami_id} ({AMI_NAME})")

    floating = ec2.allocate_address(
        Domain="vpc", TagSpecifications=tag_spec("elastic-ip", APPLIANCE_NAME)
    )
    ec2.associate_address(InstanceId=appliance_id, AllocationId=floating["AllocationId"])
    log(f"elastic ip {floating['PublicIp']} ({floating['AllocationId']}) -> {appliance_id}")

    ec2.create_route(
        RouteTableId=rtb_id, DestinationCidrBlock=VPN_CLIENT_CIDR, InstanceId=appliance_id
    )
    log(f"route {VPN_CLIENT_CIDR} -> {appliance_id} in {rtb_id}")

    web_id = ec2.run_instances(
        ImageId=base_image,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        KeyName=KEY_NAME,
        SubnetId=subnets["ap-northeast-1a"],
        TagSpecifications=tag_spec("instance", WEB_NAME),
    )["Instances"][0]["InstanceId"]
    web_eip = ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec("elastic-ip", WEB_NAME))
    ec2.associate_address(InstanceId=web_id, AllocationId=web_eip["AllocationId"])
    log(f"unrelated instance {web_id} ({WEB_NAME}) with elastic ip {web_eip['PublicIp']}")

    env = {
        "INSTANCE_NAME": APPLIANCE_NAME,
        "AMI_NAME": AMI_NAME,
        "VPC_NAME": VPC_NAME,
        "SUBNET_NAME": SUBNET_NAME,
        "ROUTE_CIDRS": VPN_CLIENT_CIDR,
        "FLOATING_IP": floating["PublicIp"],
    }
    for key, value in env.items():
        print(f"{key}={value}")


def route_target(route):
    for key in (
        "InstanceId",
        "NetworkInterfaceId",
        "GatewayId",
        "NatGatewayId",
        "TransitGatewayId",
        "VpcPeeringConnectionId",
    ):
        if route.get(key):
            return route[key]
    return "?"


def role(inst):
    """What the function made of an instance: a standby (and its mode), a
    promoted standby, a replacement, or the original."""
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags") or []}
    standby = tags.get("ec2-failover:standby")
    replaces = tags.get("ec2-failover:replaces")
    if standby and not replaces:
        return f"standby ({standby})"
    if replaces:
        return f"replaces {replaces}" + (" (was a standby)" if standby else "")
    return "-"


def show(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [VPC_NAME]}])["Vpcs"]
    if not vpcs:
        raise SystemExit(f"no VPC named {VPC_NAME}; run `build` first")
    vpc_id = vpcs[0]["VpcId"]

    instances = {}
    for reservation in ec2.describe_instances(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )["Reservations"]:
        for inst in reservation["Instances"]:
            instances[inst["InstanceId"]] = inst

    def label(instance_id):
        if not instance_id:
            return "-"
        inst = instances.get(instance_id)
        return f"{instance_id} ({get_name(inst['Tags']) if inst else '?'})"

    print(f"  instances named {APPLIANCE_NAME!r}:")
    print(f"    {'instance':<21} {'state':<10} {'az':<16} {'image':<22} {'src/dst check':<13} {'launched':<9} role")
    appliances = [i for i in instances.values() if get_name(i.get("Tags")) == APPLIANCE_NAME]
    appliances.sort(key=lambda i: i["LaunchTime"])
    for inst in appliances:
        check = inst.get("SourceDestCheck")
        if check is None:
            check = ec2.describe_instance_attribute(
                InstanceId=inst["InstanceId"], Attribute="sourceDestCheck"
            )["SourceDestCheck"]["Value"]
        print(
            f"    {inst['InstanceId']:<21} {inst['State']['Name']:<10} "
            f"{inst['Placement']['AvailabilityZone']:<16} {inst['ImageId']:<22} "
            f"{'on' if check else 'off':<13} {inst['LaunchTime']:%H:%M:%S}  {role(inst)}"
        )
    if not appliances:
        print("    (none)")

    print("  elastic ips:")
    for addr in sorted(ec2.describe_addresses()["Addresses"], key=lambda a: a["PublicIp"]):
        print(
            f"    {addr['PublicIp']:<16} {get_name(addr.get('Tags')) or '-':<8} "
            f"-> {label(addr.get('InstanceId'))}"
        )

    tables = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "tag:Name", "Values": [ROUTE_TABLE_NAME]},
        ]
    )["RouteTables"]
    for table in tables:
        print(f"  route table {table['RouteTableId']} ({ROUTE_TABLE_NAME}):")
        for route in table["Routes"]:
            dest = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock") or "?"
            if dest not in (DEFAULT_CIDR, VPN_CLIENT_CIDR):
                continue
            target = route_target(route)
            shown = label(target) if target.startswith("i-") else target
            state = route.get("State", "?")
            print(f"    {dest:<16} -> {shown}  [{state}]")

    webs = [i for i in instances.values() if get_name(i.get("Tags")) == WEB_NAME]
    for inst in webs:
        print(
            f"  unrelated {WEB_NAME!r}: {inst['InstanceId']} {inst['State']['Name']} "
            f"in {inst['Placement']['AvailabilityZone']}, public ip {inst.get('PublicIpAddress', '-')}"
        )


def report(expect):
    """Pretty-print a function report read from stdin; check its outcome if asked."""
    raw = sys.stdin.read()
    try:
        data = json.loads(raw)
    except ValueError:
        print(raw)
        print("  !! the function's answer is not JSON", file=sys.stderr)
        return 1
    # Some invoke front ends wrap the payload in a JSON string.
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            pass
    print(json.dumps(data, indent=2, sort_keys=False))
    if not isinstance(data, dict):
        print("  !! the function's answer is not a JSON object", file=sys.stderr)
        return 1
    print()
    print(
        f"  outcome: {data.get('outcome')}   incident: {data.get('incident')}   "
        f"{data.get('old_instance') or '-'} -> {data.get('new_instance') or '-'} "
        f"({data.get('availability_zone') or '-'}, {data.get('image') or '-'})"
    )
    steps = data.get("steps") or []
    width = max((len(str(step.get("step"))) for step in steps), default=0)
    for step in steps:
        print(
            f"    {str(step.get('step')):<{width}}  {str(step.get('status')):<12} "
            f"{str(step.get('ms')):>5} ms  {step.get('detail') or ''}"
        )
    if expect and data.get("outcome") != expect:
        print(f"  !! expected outcome {expect!r}, got {data.get('outcome')!r}", file=sys.stderr)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("build", "create the demo world; print the function's environment as KEY=VALUE"),
        ("show", "print the appliance, Elastic IPs and routes"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5000"
        )
    sub = commands.add_parser("report", help="pretty-print a function report from stdin")
    sub.add_argument("--expect", help="exit 1 unless the report's outcome is this")
    args = parser.parse_args()
    if args.command == "report":
        return report(args.expect)
    ec2 = ec2_client(args.endpoint)
    if args.command == "build":
        build(ec2)
        lease_table(args.endpoint)
        health_alarm(cloudwatch_client(args.endpoint))
    else:
        show(ec2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
