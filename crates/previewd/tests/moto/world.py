"""Fixtures for the moto tests: builds the account previewd runs in (VPC,
subnets, ALB and listener, cluster, hosted zone) with resources of other
teams on the same listener and zone, and reads the whole account back.

Run with the virtualenv's python (boto3 comes with moto):
    world.py ENDPOINT setup | zone | snapshot | iam-user | register-target TG_ARN |
             drift-rule RULE_ARN HOST | push-image REPOSITORY TAG |
             iam-user-without ACTION | second-alb VPC SUBNET SUBNET SG |
             waker-target-group VPC [NAME] | attach LISTENER TG PRIORITY |
             put-requests LISTENER_ARN TG_ARN COUNT | https-listener ALB_ARN
Prints JSON on stdout.
"""

import hashlib
import json
import sys

import boto3

REGION = "us-east-1"
DOMAIN = "preview.example.com"


def client(endpoint, service, **keys):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=keys.get("key", "testing"),
        aws_secret_access_key=keys.get("secret", "testing"),
    )


def setup(endpoint):
    ec2 = client(endpoint, "ec2")
    elb = client(endpoint, "elbv2")
    ecs = client(endpoint, "ecs")
    r53 = client(endpoint, "route53")
    logs = client(endpoint, "logs")

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")]
    ]
    sg = ec2.create_security_group(GroupName="previews", Description="previews", VpcId=vpc)[
        "GroupId"
    ]
    alb = elb.create_load_balancer(Name="previews", Subnets=subnets, SecurityGroups=[sg])[
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
    ecs.create_cluster(clusterName="previews")
    zone = r53.create_hosted_zone(Name=DOMAIN, CallerReference="previewd-tests")["HostedZone"][
        "Id"
    ].split("/")[-1]

    # Production next door: a target group and rule of the web team on the
    # same listener, its records in the same zone, its log group and
    # service. previewd must never change any of them.
    web_tg = elb.create_target_group(
        Name="prod-web",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        TargetType="ip",
        Tags=[{"Key": "team", "Value": "web"}],
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["www.example.com"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": web_tg}],
        Tags=[{"Key": "team", "Value": "web"}],
    )
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"www.{DOMAIN}.",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.10"}],
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"issue-7-preview.{DOMAIN}.",
                        "Type": "TXT",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": '"owned by the web team"'}],
                    },
                },
            ]
        },
    )
    logs.create_log_group(logGroupName="/ecs/prod-web", tags={"team": "web"})
    ecs.register_task_definition(
        family="prod-web",
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}],
    )
    ecs.create_service(cluster="previews", serviceName="prod-web", taskDefinition="prod-web", desiredCount=1)

    # The preview tasks' role and the image repository, for the doctor.
    iam = client(endpoint, "iam")
    role = iam.create_role(
        RoleName="preview-execution",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    ecr = client(endpoint, "ecr")
    ecr.create_repository(repositoryName="previews")
    ecr.put_lifecycle_policy(
        repositoryName="previews",
        lifecyclePolicyText=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
    )

    print(
        json.dumps(
            {
                "execution_role_arn": role,
                "vpc_id": vpc,
                "subnets": subnets,
                "security_group": sg,
                "alb_arn": alb["LoadBalancerArn"],
                "alb_dns_name": alb["DNSName"],
                "alb_zone_id": alb["CanonicalHostedZoneId"],
                "listener_arn": listener,
                "hosted_zone_id": zone,
            }
        )
    )


def second_alb(endpoint, vpc, subnet_a, subnet_b, sg):
    """A second load balancer and listener for the pool, with the API
    team's rule and target group on it (they take up its room too)."""
    elb = client(endpoint, "elbv2")
    alb = elb.create_load_balancer(Name="previews-2", Subnets=[subnet_a, subnet_b], SecurityGroups=[sg])[
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
    api_tg = elb.create_target_group(
        Name="prod-api",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        TargetType="ip",
        Tags=[{"Key": "team", "Value": "api"}],
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": api_tg}],
        Tags=[{"Key": "team", "Value": "api"}],
    )
    print(
        json.dumps(
            {
                "alb_arn": alb["LoadBalancerArn"],
                "alb_dns_name": alb["DNSName"],
                "alb_zone_id": alb["CanonicalHostedZoneId"],
                "listener_arn": listener,
            }
        )
    )


def zone(endpoint):
    """Only the hosted zone, for a second moto that serves Route53."""
    r53 = client(endpoint, "route53")
    zone = r53.create_hosted_zone(Name=DOMAIN, CallerReference="previewd-tests")["HostedZone"]["Id"]
    print(json.dumps({"hosted_zone_id": zone.split("/")[-1]}))


def snapshot(endpoint):
    elb = client(endpoint, "elbv2")
    ecs = client(endpoint, "ecs")
    r53 = client(endpoint, "route53")
    logs = client(endpoint, "logs")

    def tags_of(arns):
        out = {}
        for i in range(0, len(arns), 20):
            for d in elb.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
                out[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d.get("Tags", [])}
        return out

    listeners = [l["ListenerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"] for l in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]]
    rules = [r for l in listeners for r in elb.describe_rules(ListenerArn=l)["Rules"] if not r["IsDefault"]]
    rule_tags = tags_of([r["RuleArn"] for r in rules])
    tgs = elb.describe_target_groups()["TargetGroups"]
    tg_tags = tags_of([t["TargetGroupArn"] for t in tgs])
    zone = r53.list_hosted_zones()["HostedZones"][0]["Id"]
    records = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    groups = logs.describe_log_groups()["logGroups"]
    service_arns = ecs.list_services(cluster="previews")["serviceArns"]
    services = ecs.describe_services(cluster="previews", services=service_arns, include=["TAGS"])["services"] if service_arns else []
    # Families with an ACTIVE revision, newest revision each (moto's
    # ListTaskDefinitionFamilies ignores the status filter).
    active_arns = ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
    newest = {}
    for arn in active_arns:
        family, revision = arn.split("/")[-1].rsplit(":", 1)
        newest[family] = max(newest.get(family, 0), int(revision))
    tds = {}
    for f, revision in newest.items():
        d = ecs.describe_task_definition(taskDefinition=f"{f}:{revision}", include=["TAGS"])
        tds[f] = {**d["taskDefinition"], "tags": {t["key"]: t["value"] for t in d.get("tags", [])}}

    print(
        json.dumps(
            {
                "rules": [
                    {
                        "arn": r["RuleArn"],
                        "priority": r["Priority"],
                        "conditions": r["Conditions"],
                        "actions": r["Actions"],
                        "tags": rule_tags.get(r["RuleArn"], {}),
                    }
                    for r in rules
                ],
                "target_groups": [
                    {
                        "arn": t["TargetGroupArn"],
                        "name": t["TargetGroupName"],
                        "port": t["Port"],
                        "target_type": t["TargetType"],
                        "health_check_path": t.get("HealthCheckPath"),
                        "tags": tg_tags.get(t["TargetGroupArn"], {}),
                    }
                    for t in tgs
                ],
                "records": records,
                "log_groups": [
                    {"name": g["logGroupName"], "retention": g.get("retentionInDays"),
                     "tags": logs.list_tags_for_resource(resourceArn=g["arn"].removesuffix(":*")).get("tags", {})}
                    for g in groups
                ],
                "services": [
                    {
                        "name": s["serviceName"],
                        "status": s["status"],
                        "task_definition": s["taskDefinition"],
                        "desired": s["desiredCount"],
                        "launch_type": s.get("launchType"),
                        "load_balancers": s.get("loadBalancers", []),
                        "network": s.get("networkConfiguration"),
                        "tags": {t["key"]: t["value"] for t in s.get("tags", [])},
                    }
                    for s in services
                ],
                "task_definitions": tds,
                "active_task_definition_arns": active_arns,
            },
            default=str,
        )
    )


def iam_user(endpoint):
    """A user that may do everything previewd does except ModifyRule: the
    field's "first deploy worked, the rerun failed" account."""
    iam = client(endpoint, "iam")
    iam.create_user(UserName="rerun")
    iam.put_user_policy(
        UserName="rerun",
        PolicyName="previewd-without-modify-rule",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "NotAction": "elasticloadbalancing:ModifyRule",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="rerun")["AccessKey"]
    print(json.dumps({"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))


def iam_user_without(endpoint, action):
    """A user that may do everything but `action`. moto checks ECR actions
    against Resource "*" only, which this policy grants."""
    iam = client(endpoint, "iam")
    iam.create_user(UserName="without")
    iam.put_user_policy(
        UserName="without",
        PolicyName=f"previewd-without-{action.replace(':', '-')}",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "NotAction": action, "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="without")["AccessKey"]
    print(json.dumps({"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))


def push_image(endpoint, repository, tag):
    """What a build job's `docker push` leaves in ECR: a manifest under a
    tag (layers are not needed to be found by DescribeImages)."""
    ecr = client(endpoint, "ecr")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            # One image per tag: the config differs by tag.
            "digest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest(),
        },
        "layers": [],
    }
    image = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
    print(json.dumps({"digest": image["image"]["imageId"]["imageDigest"]}))


def register_target(endpoint, tg_arn):
    elb = client(endpoint, "elbv2")
    elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": "10.0.1.10", "Port": 80}])
    print(json.dumps({"registered": tg_arn}))


def drift_rule(endpoint, rule_arn, host):
    """Someone edits previewd's rule in the console."""
    elb = client(endpoint, "elbv2")
    elb.modify_rule(
        RuleArn=rule_arn,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
    )
    print(json.dumps({"drifted": rule_arn}))


def waker_target_group(endpoint, vpc, name="previewd-waker"):
    """The waker target group the stack creates: previewd's own port (one
    per load balancer, each with its own name)."""
    elb = client(endpoint, "elbv2")
    tg = elb.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=8081,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/.previewd-waker/health",
    )["TargetGroups"][0]["TargetGroupArn"]
    print(json.dumps({"arn": tg}))


def attach(endpoint, listener_arn, tg_arn, priority):
    """A rule that attaches a target group to the listener's load balancer
    (as the stack's waker rule does), for a host nobody uses."""
    elb = client(endpoint, "elbv2")
    rule = elb.create_rule(
        ListenerArn=listener_arn,
        Priority=int(priority),
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["waker.invalid"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )["Rules"][0]["RuleArn"]
    print(json.dumps({"rule": rule}))


def https_listener(endpoint, alb_arn):
    """An HTTPS listener on the load balancer, with an ACM certificate for
    the preview domain: where access protection's rules may go."""
    acm = client(endpoint, "acm")
    elb = client(endpoint, "elbv2")
    cert = acm.request_certificate(DomainName=f"*.{DOMAIN}")["CertificateArn"]
    listener = elb.create_listener(
        LoadBalancerArn=alb_arn,
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": cert}],
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
    )["Listeners"][0]
    print(json.dumps({"listener_arn": listener["ListenerArn"], "protocol": listener["Protocol"]}))


def put_requests(endpoint, listener_arn, tg_arn, count):
    """The load balancer's RequestCount of one target group, as ALB
    publishes it (AWS/ApplicationELB, by LoadBalancer and TargetGroup)."""
    cw = client(endpoint, "cloudwatch")
    load_balancer = "/".join(listener_arn.split(":listener/")[1].split("/")[:3])
    target_group = tg_arn.split(":", 5)[5]
    cw.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": [
                    {"Name": "LoadBalancer", "Value": load_balancer},
                    {"Name": "TargetGroup", "Value": target_group},
                ],
                "Value": float(count),
                "Unit": "Count",
            }
        ],
    )
    print(json.dumps({"put": count, "load_balancer": load_balancer, "target_group": target_group}))


if __name__ == "__main__":
    endpoint, command, *args = sys.argv[1:]
    {
        "setup": setup,
        "zone": zone,
        "snapshot": snapshot,
        "iam-user": iam_user,
        "register-target": register_target,
        "drift-rule": drift_rule,
        "push-image": push_image,
        "iam-user-without": iam_user_without,
        "second-alb": second_alb,
        "waker-target-group": waker_target_group,
        "put-requests": put_requests,
        "attach": attach,
        "https-listener": https_listener,
    }[command](endpoint, *args)
