"""The account of the `daemon-memory` benchmark on moto: one VPC, ALBS load
balancers each with an HTTP listener, an ECS cluster and a hosted zone; and
a stand-in for the tasks' health, which moto does not model.

Run with the moto virtualenv's python (boto3 comes with moto):
    fleet.py ENDPOINT setup ALBS    prints the account as JSON
    fleet.py ENDPOINT register      runs until killed: every target group
                                    without a target gets one, as a started
                                    task would register itself
"""

import json
import sys
import time

import boto3

REGION = "us-east-1"
DOMAIN = "preview.example.com"


def client(endpoint, service):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def setup(endpoint, albs):
    ec2 = client(endpoint, "ec2")
    elb = client(endpoint, "elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")]
    ]
    sg = ec2.create_security_group(GroupName="previews", Description="previews", VpcId=vpc)[
        "GroupId"
    ]
    listeners = []
    for i in range(int(albs)):
        alb = elb.create_load_balancer(Name=f"previews-{i}", Subnets=subnets, SecurityGroups=[sg])[
            "LoadBalancers"
        ][0]
        listener = elb.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
                }
            ],
        )["Listeners"][0]["ListenerArn"]
        listeners.append(
            {
                "listener_arn": listener,
                "alb_dns_name": alb["DNSName"],
                "alb_zone_id": alb["CanonicalHostedZoneId"],
            }
        )
    client(endpoint, "ecs").create_cluster(clusterName="previews")
    zone = client(endpoint, "route53").create_hosted_zone(
        Name=DOMAIN, CallerReference="previewd-bench"
    )["HostedZone"]["Id"]
    print(
        json.dumps(
            {
                "vpc_id": vpc,
                "subnets": subnets,
                "security_group": sg,
                "listeners": listeners,
                "hosted_zone_id": zone.split("/")[-1],
                "domain": DOMAIN,
            }
        )
    )


def register(endpoint):
    elb = client(endpoint, "elbv2")
    done = set()
    while True:
        for page in elb.get_paginator("describe_target_groups").paginate():
            for tg in page["TargetGroups"]:
                arn = tg["TargetGroupArn"]
                if arn in done:
                    continue
                elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.1.10", "Port": 80}])
                done.add(arn)
        time.sleep(0.5)


if __name__ == "__main__":
    endpoint, command, *args = sys.argv[1:]
    {"setup": setup, "register": register}[command](endpoint, *args)
