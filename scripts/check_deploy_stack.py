"""Creates the CloudFormation stack deploy/cloudformation/previewd.yaml on
moto (a local AWS emulator) and checks what comes out: the stack completes,
its intrinsic functions resolve to the ARNs and values previewd needs, the
public ALB rule forwards only /v1/* of DaemonHost and a lower-precedence rule
answers 404 for the rest, the internal listener (9090) is open to
InternalCidr only, with Sleep the waker target group of the stack's ALB
(ip, port 8081) is attached to it, previewd's 8081 is its target and
previewd gets every ALB's waker, the
configuration the task definition hands previewd passes `previewd config
check`, and the deployed policy grants the actions `previewd iam-policy`
prints for that configuration; the build job's push-only role can push to
the preview repository and do nothing else. cfn-lint checks the template's
shape; this checks what it computes.

Usage: check_deploy_stack.py PREVIEWD_BINARY   (run with moto's virtualenv
python; scripts/test installs it). Talks only to 127.0.0.1.
"""

import ast
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy/cloudformation/previewd.yaml"
problems: list[str] = []


def expect(ok: bool, what: str) -> None:
    if not ok:
        problems.append(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto_server did not start")


def actions(doc: dict) -> set[str]:
    out = set()
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    for s in statements:
        out.update(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    return out


def matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match: `*` any run, `?` one character, case-sensitive
    (action names compare case-insensitively, so callers lowercase them)."""
    import fnmatch
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def allowed(docs: list[dict], action: str, resource: str) -> bool:
    """Whether identity policies without conditions allow `action` on
    `resource`: some Allow statement matches both and no Deny does (moto
    checks ECR calls against Resource "*" only, so it cannot judge a policy
    scoped to one repository; this evaluates the deployed policy itself)."""
    verdict = False
    for doc in docs:
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for st in statements:
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            hit = (any(matches(a.lower(), action.lower()) for a in acts)
                   and any(matches(r, resource) for r in res))
            if hit and st["Effect"] == "Deny":
                return False
            verdict = verdict or (hit and st["Effect"] == "Allow" and "Condition" not in st)
    return verdict


# What pushing an image takes: the registry login (on "*") and the layer and
# manifest calls on the repository; DescribeImages lets the build skip a
# commit already pushed.
PUSH_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:DescribeImages",
                "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"]
# A sample of what the push-only role must never do, on any resource.
NOT_PUSH = ["ecr:BatchDeleteImage", "ecr:DeleteRepository", "ecr:SetRepositoryPolicy",
            "ecr:PutLifecyclePolicy", "ecr:CreateRepository", "ecr:GetDownloadUrlForLayer",
            "ecs:UpdateService", "ecs:RegisterTaskDefinition", "elasticloadbalancing:ModifyRule",
            "route53:ChangeResourceRecordSets", "logs:DeleteLogGroup", "iam:PassRole",
            "iam:CreateRole", "sts:AssumeRole", "s3:GetObject", "secretsmanager:GetSecretValue"]


def check_push_role(c: dict, outputs: dict, url: str) -> None:
    """The build job's role: trusted by one repository and ref, and able to
    push to the preview repository and nothing else."""
    name = outputs["ImagePushRoleArn"].split("/")[-1]
    role = c["iam"].get_role(RoleName=name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    expect(cond.get("token.actions.githubusercontent.com:sub") == "repo:example/app:ref:refs/heads/main",
           f"push role trusts sub {cond.get('token.actions.githubusercontent.com:sub')}")
    attached = c["iam"].list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    expect(attached == [], f"the push role carries managed policies {attached}")
    docs = []
    for pname in c["iam"].list_role_policies(RoleName=name)["PolicyNames"]:
        d = c["iam"].get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
        # moto's CloudFormation stores an inline policy as a Python repr.
        docs.append(d if isinstance(d, dict) else ast.literal_eval(d) if d.startswith("{'") else json.loads(d))
    repo = c["ecr"].describe_repositories(repositoryNames=["previews"])["repositories"][0]["repositoryArn"]
    other = repo.rsplit("/", 1)[0] + "/production"
    expect(allowed(docs, "ecr:GetAuthorizationToken", "*"), "the push role cannot log in to ECR")
    for a in PUSH_ACTIONS:
        expect(allowed(docs, a, repo), f"the push role cannot {a} on the preview repository")
        expect(not allowed(docs, a, other), f"the push role can {a} on another repository")
    for a in NOT_PUSH:
        for r in ["*", repo, other]:
            expect(not allowed(docs, a, r), f"the push role can {a} on {r}")
    granted = set().union(*(actions(d) for d in docs))
    expect(granted == set(PUSH_ACTIONS) | {"ecr:GetAuthorizationToken"},
           f"the push role grants {sorted(granted)}, not just the push actions")

    # And as moto enforces it: credentials of the assumed role log in to ECR
    # and are refused everything outside ECR push. moto's CloudFormation
    # stores inline policies as a Python repr, which its own enforcement
    # cannot read: store the same documents again as JSON first.
    for pname, d in zip(c["iam"].list_role_policies(RoleName=name)["PolicyNames"], docs):
        c["iam"].put_role_policy(RoleName=name, PolicyName=pname, PolicyDocument=json.dumps(d))
    creds = c["sts"].assume_role_with_web_identity(
        RoleArn=outputs["ImagePushRoleArn"], RoleSessionName="build-check",
        WebIdentityToken="github-oidc-token")["Credentials"]
    import http.client
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("POST", "/moto-api/reset-auth", body=b"0")
    expect(conn.getresponse().status == 200, "moto refused to enforce IAM")
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
              aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    as_role = {n: boto3.client(n, **kw) for n in ["ecr", "ecs", "iam", "logs"]}
    try:
        as_role["ecr"].get_authorization_token()
    except Exception as e:  # noqa: BLE001 - any refusal is the finding
        problems.append(f"the push role's ECR login was refused on moto: {e}")
    for what, call in [
        ("ecr:DeleteRepository", lambda: as_role["ecr"].delete_repository(repositoryName="previews", force=True)),
        ("ecr:BatchDeleteImage", lambda: as_role["ecr"].batch_delete_image(
            repositoryName="previews", imageIds=[{"imageTag": "x"}])),
        ("ecs:ListClusters", lambda: as_role["ecs"].list_clusters()),
        ("iam:ListRoles", lambda: as_role["iam"].list_roles()),
        ("logs:DescribeLogGroups", lambda: as_role["logs"].describe_log_groups()),
    ]:
        try:
            call()
            problems.append(f"the push role may call {what} on moto")
        except Exception as e:  # noqa: BLE001
            expect("AccessDenied" in str(e) or "403" in str(e), f"{what} failed otherwise than denied: {e}")


def main() -> int:
    binary = sys.argv[1]
    proc, url = start_moto()
    try:
        kw = dict(endpoint_url=url, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        c = {n: boto3.client(n, **kw) for n in
             ["ec2", "elbv2", "ecs", "route53", "secretsmanager", "cloudformation", "iam", "ecr", "logs", "sts"]}
        # The shared infrastructure the stack refers to.
        vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [c["ec2"].create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                          AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                   for i, z in [(1, "a"), (2, "b")]]
        alb_sg = c["ec2"].create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
        lb = c["elbv2"].create_load_balancer(Name="previews", Subnets=subnets, SecurityGroups=[alb_sg])["LoadBalancers"][0]
        tg = c["elbv2"].create_target_group(Name="default", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]
        listener = c["elbv2"].create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]["ListenerArn"]
        # A pool of two: a second ALB's listener (MoreListeners).
        lb2 = c["elbv2"].create_load_balancer(Name="previews-2", Subnets=subnets, SecurityGroups=[alb_sg])["LoadBalancers"][0]
        listener2 = c["elbv2"].create_listener(
            LoadBalancerArn=lb2["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])["Listeners"][0]["ListenerArn"]
        more = (f'{{ arn = "{listener2}", alb_dns_name = "{lb2["DNSName"]}", '
                f'alb_zone_id = "{lb2["CanonicalHostedZoneId"]}" }}')
        # Sleep on a pool: the second ALB's waker target group, made by hand
        # (MoreWakerTargetGroups); the stack makes the first ALB's.
        alb_key = lambda lb_arn: lb_arn.split(":loadbalancer/")[1]
        waker2 = c["elbv2"].create_target_group(
            Name="previewd-waker-2", Protocol="HTTP", Port=8081, VpcId=vpc, TargetType="ip",
            HealthCheckPath="/.previewd-waker/health")["TargetGroups"][0]["TargetGroupArn"]
        more_wakers = f'"{alb_key(lb2["LoadBalancerArn"])}" = "{waker2}"'
        c["ecs"].create_cluster(clusterName="previews")
        zone = c["route53"].create_hosted_zone(Name="preview.example.com", CallerReference="check")["HostedZone"]["Id"].split("/")[-1]
        secret = lambda n: c["secretsmanager"].create_secret(Name=n, SecretString="x")["ARN"]
        params = {
            "VpcId": vpc, "SubnetIds": ",".join(subnets), "AlbSecurityGroupId": alb_sg,
            "ClusterName": "previews", "ListenerArn": listener, "AlbDnsName": lb["DNSName"],
            "AlbCanonicalZoneId": lb["CanonicalHostedZoneId"], "HostedZoneId": zone,
            "MoreListeners": more, "MoreListenerArns": listener2,
            "PreviewDomain": "preview.example.com", "DaemonHost": "previewd.preview.example.com",
            "InternalCidr": "10.0.0.0/16",
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/previewd@sha256:" + "a" * 64,
            "DatabaseUrlSecretArn": secret("db"), "ApiTokenSecretArn": secret("api"),
            "GitHubTokenSecretArn": secret("gh"),
            "CallbackAllowedHosts": "qa.example.com,*.qanote.example.com",
            "PreviewTaskRoleArn": "arn:aws:iam::123456789012:role/app",
            "GitHubRepository": "example/app", "GitHubRunsOnce": "true",
            "Sleep": "true", "MoreWakerTargetGroups": more_wakers,
        }
        cfn = c["cloudformation"]
        cfn.create_stack(StackName="previewd", TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        stack = cfn.describe_stacks(StackName="previewd")["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            sys.exit(f"stack: {stack['StackStatus']} {stack.get('StackStatusReason')}")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        for key in ["DaemonUrl", "GitHubRoleArn", "ImagePushRoleArn", "RepositoryUri", "PreviewExecutionRoleArn",
                    "PreviewSecurityGroupId", "PreviewsPolicyArn", "DaemonSecurityGroupId", "WakerTargetGroupArn"]:
            expect(key in outputs, f"output {key} is missing")

        # The policy, as deployed.
        pol = c["iam"].get_policy(PolicyArn=outputs["PreviewsPolicyArn"])["Policy"]
        doc = c["iam"].get_policy_version(PolicyArn=pol["Arn"], VersionId=pol["DefaultVersionId"])["PolicyVersion"]["Document"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        by_sid = {s["Sid"]: s for s in doc["Statement"]}
        # Every listener of the pool, and the rules of each.
        rule_arns = [arn.replace(":listener/", ":listener-rule/") + "/*" for arn in [listener, listener2]]
        expect(by_sid["ChangeRulesOfTheSharedListener"]["Resource"] == rule_arns,
               f"rule scope {by_sid['ChangeRulesOfTheSharedListener']['Resource']} != {rule_arns}")
        expect(by_sid["CreateRulesOnTheSharedListener"]["Resource"] == [listener, listener2],
               "CreateRule is not scoped to the pool's listeners")
        expect(by_sid["PreviewLogGroups"]["Resource"].endswith(":log-group:/ecs/pv-*"), "log groups are not scoped to /ecs/pv-*")
        expect(by_sid["PreviewRecordsOnly"]["Resource"].endswith(f"hostedzone/{zone}"), "DNS is not scoped to the zone")
        passed = by_sid["PassOnlyThePreviewRolesToEcsTasks"]["Resource"]
        expect(sorted(passed) == sorted([outputs["PreviewExecutionRoleArn"], params["PreviewTaskRoleArn"]]),
               f"iam:PassRole names {passed}")

        # What the shared listener exposes of previewd: /v1/* of DaemonHost
        # forwarded, everything else on DaemonHost a fixed 404 evaluated after
        # it (DaemonRulePriority 10, DaemonFallbackRulePriority 11 by default).
        host = params["DaemonHost"]
        daemon_rules = {}
        for r in c["elbv2"].describe_rules(ListenerArn=listener)["Rules"]:
            conds = {}
            for cond in r.get("Conditions", []):
                values = (cond.get("Values")
                          or cond.get("HostHeaderConfig", {}).get("Values")
                          or cond.get("PathPatternConfig", {}).get("Values") or [])
                conds[cond["Field"]] = sorted(values)
            if conds.get("host-header") == [host]:
                daemon_rules[r["Priority"]] = (conds, r["Actions"])
        expect(sorted(daemon_rules, key=int) == ["9", "10", "11"],
               f"rules for {host} at priorities {sorted(daemon_rules, key=int)}, want 9 (the waker's), 10 and 11")
        if "10" in daemon_rules:
            conds, acts = daemon_rules["10"]
            expect(conds.get("path-pattern") == ["/v1/*"], f"the forwarding rule's paths are {conds.get('path-pattern')}, want ['/v1/*']")
            expect([a["Type"] for a in acts] == ["forward"], f"the /v1/* rule's actions {acts}")
        if "11" in daemon_rules:
            conds, acts = daemon_rules["11"]
            expect("path-pattern" not in conds, f"the fallback rule has paths {conds.get('path-pattern')}")
            expect([(a["Type"], a.get("FixedResponseConfig", {}).get("StatusCode")) for a in acts] == [("fixed-response", "404")],
                   f"the fallback rule's actions {acts}, want a fixed 404")
        # Sleep: the waker target group, on the stack's ALB (its rule at
        # WakerRulePriority passes only the health path), previewd's 8081
        # its target through the service.
        waker = outputs.get("WakerTargetGroupArn", "")
        if "9" in daemon_rules:
            conds, acts = daemon_rules["9"]
            expect(conds.get("path-pattern") == ["/.previewd-waker/health"],
                   f"the waker rule's paths are {conds.get('path-pattern')}")
            expect([(a["Type"], a.get("TargetGroupArn")) for a in acts] == [("forward", waker)],
                   f"the waker rule's actions {acts}, want a forward to {waker}")
        if waker:
            wtg = c["elbv2"].describe_target_groups(TargetGroupArns=[waker])["TargetGroups"][0]
            expect((wtg["TargetType"], wtg["Port"], wtg["Protocol"], wtg.get("HealthCheckPath")) ==
                   ("ip", 8081, "HTTP", "/.previewd-waker/health"),
                   f"the waker target group is {wtg['TargetType']}:{wtg['Port']} {wtg.get('HealthCheckPath')}")
            expect(lb["LoadBalancerArn"] in wtg.get("LoadBalancerArns", []),
                   f"the waker target group is on {wtg.get('LoadBalancerArns')}, not the stack's ALB")
        # moto's CloudFormation keeps no service load balancers: read the
        # mapping from the template, as CloudFormation resolves it with Sleep.
        lbs = cfn_yaml.load(str(TEMPLATE))["Resources"]["Service"]["Properties"]["LoadBalancers"]
        with_sleep = lbs.get("Fn::If", [None, []])[1] if isinstance(lbs, dict) else lbs
        mappings = sorted((m["ContainerPort"], m["TargetGroupArn"].get("Ref")) for m in with_sleep)
        expect(mappings == [(8080, "DaemonTargetGroup"), (8081, "WakerTargetGroup")],
               f"with Sleep the service registers previewd as {mappings}; want 8080 in the daemon's group and 8081 in the waker's")
        groups = c["ec2"].describe_security_groups(GroupIds=[outputs["DaemonSecurityGroupId"]])["SecurityGroups"]
        ingress = sorted((p.get("FromPort"), p.get("ToPort"),
                          tuple(sorted(x["CidrIp"] for x in p.get("IpRanges", []))),
                          tuple(sorted(x["GroupId"] for x in p.get("UserIdGroupPairs", []))))
                         for p in groups[0]["IpPermissions"])
        expect(ingress == [(8080, 8080, (), (alb_sg,)), (8081, 8081, (), (alb_sg,)), (9090, 9090, ("10.0.0.0/16",), ())],
               f"previewd's security group admits {ingress}; want 8080 and 8081 (the waker) from the ALB, 9090 from InternalCidr only")

        # The GitHub role's trust: one repository, one ref, STS audience.
        role = c["iam"].get_role(RoleName=outputs["GitHubRoleArn"].split("/")[-1])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        cond = trust["Statement"][0]["Condition"]["StringEquals"]
        expect(cond.get("token.actions.githubusercontent.com:sub") == "repo:example/app:ref:refs/heads/main",
               f"GitHub role trusts sub {cond.get('token.actions.githubusercontent.com:sub')}")
        expect(cond.get("token.actions.githubusercontent.com:aud") == "sts.amazonaws.com", "GitHub role audience")
        # The role that deploys pushes nothing: its only policy is the preview
        # one (read from the template: moto's CloudFormation attaches no
        # ManagedPolicyArns).
        gh = cfn_yaml.load(str(TEMPLATE))["Resources"]["GitHubRole"]["Properties"]
        expect("Policies" not in gh and gh.get("ManagedPolicyArns") == [{"Ref": "PreviewsPolicy"}],
               f"the GitHub role carries {gh.get('Policies')} and {gh.get('ManagedPolicyArns')}, "
               "want only the previews policy")

        # The repository's lifecycle policy (moto's CloudFormation does not
        # apply it: render it as CloudFormation would and have ECR take it)
        # and the log group's retention.
        sub = cfn_yaml.load(str(TEMPLATE))["Resources"]["Repository"]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
        text = sub.replace("${ImageRetentionDays}", "30")
        c["ecr"].put_lifecycle_policy(repositoryName="previews", lifecyclePolicyText=text)
        lifecycle = json.loads(c["ecr"].get_lifecycle_policy(repositoryName="previews")["lifecyclePolicyText"])
        counts = [(r["selection"]["tagStatus"], r["selection"]["countNumber"]) for r in lifecycle["rules"]]
        expect(counts == [("untagged", 1), ("any", 30)], f"lifecycle rules {counts}")
        groups = c["logs"].describe_log_groups(logGroupNamePrefix="/previewd/")["logGroups"]
        expect([g.get("retentionInDays") for g in groups] == [14], f"log group retention {groups}")

        # The configuration the task definition gives previewd.
        td_arn = c["ecs"].list_task_definitions()["taskDefinitionArns"][0]
        container = c["ecs"].describe_task_definition(taskDefinition=td_arn)["taskDefinition"]["containerDefinitions"][0]
        env = {e["name"]: e["value"] for e in container["environment"] if e}
        # moto leaves AWS::NoValue in lists as null; CloudFormation drops them.
        secrets = [s["name"] for s in container.get("secrets") or [] if s]
        expect(secrets == ["PREVIEWD_STORE_URL", "PREVIEWD_API_TOKEN", "PREVIEWD_GITHUB_TOKEN"], f"secrets {secrets}")
        expect(env.get("PREVIEWD_CONTAINER_IMAGE") == outputs["RepositoryUri"] + ":{commit_sha}", "container.image")
        expect(env.get("PREVIEWD_SERVER_LISTEN") == "0.0.0.0:8080", f"server.listen {env.get('PREVIEWD_SERVER_LISTEN')}")
        expect(env.get("PREVIEWD_SERVER_INTERNAL_LISTEN") == "0.0.0.0:9090",
               f"server.internal_listen {env.get('PREVIEWD_SERVER_INTERNAL_LISTEN')}")
        # The pool reaches previewd as cloud.listeners, the single keys unset.
        expect("PREVIEWD_CLOUD_LISTENER_ARN" not in env and listener2 in env.get("PREVIEWD_CLOUD_LISTENERS", "")
               and listener in env.get("PREVIEWD_CLOUD_LISTENERS", ""),
               f"cloud.listeners {env.get('PREVIEWD_CLOUD_LISTENERS')}")
        ports = sorted(m["containerPort"] for m in container.get("portMappings", []))
        expect(ports == [8080, 8081, 9090], f"container ports {ports}")
        # Sleep reaches previewd with every ALB's waker, keyed by app/<name>/<id>.
        import tomllib
        expect(env.get("PREVIEWD_SLEEP_ENABLED") == "true" and env.get("PREVIEWD_SLEEP_WAKER_LISTEN") == "0.0.0.0:8081",
               f"sleep.enabled {env.get('PREVIEWD_SLEEP_ENABLED')}, waker_listen {env.get('PREVIEWD_SLEEP_WAKER_LISTEN')}")
        try:
            wakers = tomllib.loads("v = " + env.get("PREVIEWD_SLEEP_WAKER_TARGET_GROUPS", ""))["v"]
        except tomllib.TOMLDecodeError as e:
            wakers = f"not TOML: {e}"
        want = {alb_key(lb["LoadBalancerArn"]): waker, alb_key(lb2["LoadBalancerArn"]): waker2}
        expect(wakers == want, f"sleep.waker_target_groups {wakers}, want {want}")
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env,
                   "PREVIEWD_STORE_URL": "postgres://previewd:pw@db.internal:5432/previewd",
                   # previewd refuses an API token shorter than 32 characters.
                   "PREVIEWD_API_TOKEN": "t" * 32, "PREVIEWD_GITHUB_TOKEN": "token"}
        check = subprocess.run([binary, "config", "check"], env=run_env, capture_output=True, text=True)
        expect(check.returncode == 0, f"previewd config check on the stack's configuration:\n{check.stdout}{check.stderr}")
        # One project (Projects empty): GitHubRepository. With Projects set,
        # the stack passes PREVIEWD_PROJECTS instead; previewd must accept
        # that in place of previews.project.
        expect(env.get("PREVIEWD_PREVIEWS_PROJECT") == "example/app" and "PREVIEWD_PROJECTS" not in env,
               f"previews.project {env.get('PREVIEWD_PREVIEWS_PROJECT')}")
        several = {k: v for k, v in run_env.items() if k != "PREVIEWD_PREVIEWS_PROJECT"}
        several["PREVIEWD_PROJECTS"] = (
            '[{ project = "example/app" }, '
            '{ project = "example/api", naming = { host_pattern = "api-{issue}-preview" } }]'
        )
        check = subprocess.run([binary, "config", "check"], env=several, capture_output=True, text=True)
        expect(check.returncode == 0, f"previewd config check with the stack's Projects:\n{check.stdout}{check.stderr}")
        printed = subprocess.run([binary, "iam-policy"], env=run_env, capture_output=True, text=True)
        if printed.returncode != 0:
            problems.append(f"previewd iam-policy failed:\n{printed.stderr}")
        else:
            # ECR push is the push-only role's (checked below); the image
            # check's ecr:DescribeImages (ReadPreviewImages) is previewd's.
            push_sids = {"EcrLogin", "EcrPushPreviewImages"}
            generated_doc = json.loads(printed.stdout)
            generated = actions({"Statement": [
                s for s in generated_doc["Statement"] if s.get("Sid") not in push_sids
            ]})
            deployed = actions(doc)
            expect(generated == deployed,
                   f"the stack grants {sorted(deployed - generated)} beyond and lacks {sorted(generated - deployed)} "
                   "of `previewd iam-policy`")
        # Last: it switches moto's IAM enforcement on.
        check_push_role(c, outputs, url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("stack OK on moto: created, ARNs resolved, only /v1/* public, 9090 from InternalCidr only, "
          "the waker target group on the ALB with previewd's 8081 as its target, "
          "previewd accepts its configuration, "
          "policy matches `previewd iam-policy`, the push role pushes and nothing else")
    return 0


if __name__ == "__main__":
    sys.exit(main())
