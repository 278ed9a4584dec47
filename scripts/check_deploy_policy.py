"""The CloudFormation stack's previewd policy grants exactly the IAM actions
of the operation registry in crates/core/src/operations.rs: none missing (a deploy
would fail with AccessDenied), none extra (least privilege), no wildcard
action, and iam:PassRole only towards ECS tasks. When the generated policy
deploy/iam/previewd-policy.json is present, it must grant the same actions,
plus the ECR push actions when its configuration names `cloud.ecr_repository`
(the stack grants those to the push-only ImagePushRole of the workflow's
build job; the check holds that role to exactly that set).

Run with the lint virtualenv's python (it needs cfn-lint's YAML loader):
    python scripts/check_deploy_policy.py
"""

import json
import re
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "crates/core/src/operations.rs"
TEMPLATE = ROOT / "deploy/cloudformation/previewd.yaml"
GENERATED = ROOT / "deploy/iam/previewd-policy.json"
# What pushing a preview image to one ECR repository takes.
ECR_PUSH = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
}


def registry_constants(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """The registry's service prefixes (`Service::iam_prefix`, falling back
    on `Service::label`) and its extra permissions (`ELB_ADD_TAGS`, ...)."""
    labels = dict(re.findall(r'Service::(\w+) => "([a-z0-9-]+)",', text))
    prefix_fn = text[text.index("fn iam_prefix"):]
    prefix_fn = prefix_fn[: prefix_fn.index("\n    }\n")]
    prefixes = {**labels, **dict(re.findall(r'Service::(\w+) => "([a-z0-9-]+)",', prefix_fn))}
    extras = {
        name: f"{prefixes[service]}:{action}"
        for name, service, action in re.findall(
            r'pub const (\w+): Permission = Permission \{\s*service: Service::(\w+),\s*name: "(\w+)",',
            text,
        )
    }
    return prefixes, extras


def table_actions() -> set[str]:
    """The IAM actions of the controller's operations in the registry (rows
    whose IAM scope is `Some(..)`; the doctor's checks are `None`)."""
    text = REGISTRY.read_text()
    prefixes, extras = registry_constants(text)
    body = text[text.index("registry! {"):]
    rows = re.findall(
        r"^\s*(\w+) (\w+): \"[^\"]*\", \[[^\]]*\], \w+, \w+, (Some\(\w+\)|None), \[([^\]]*)\];",
        body,
        re.M,
    )
    if not rows:
        sys.exit(f"{REGISTRY}: found no registry! rows; has the table's shape changed?")
    actions = set()
    for service, operation, scope, also in rows:
        if scope == "None":
            continue
        if service not in prefixes:
            sys.exit(f"{REGISTRY}: row uses unknown service {service}")
        actions.add(f"{prefixes[service]}:{operation}")
        for extra in re.findall(r"\w+", also):
            if extra not in extras:
                sys.exit(f"{REGISTRY}: row needs unknown permission {extra}")
            actions.add(extras[extra])
    return actions


def statements(doc) -> list[dict]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def policy_actions(doc, where: str, problems: list[str]) -> set[str]:
    actions = set()
    for s in statements(doc):
        if not isinstance(s, dict) or "Fn::If" in s:
            problems.append(f"{where}: statement {s!r} is conditional; keep the policy flat")
            continue
        if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s:
            problems.append(f"{where}: statement {s.get('Sid')} must be a plain Allow")
        for a in as_list(s.get("Action", [])):
            if "*" in a:
                problems.append(f"{where}: statement {s.get('Sid')} grants wildcard action {a!r}")
            actions.add(a)
        if "iam:PassRole" in as_list(s.get("Action", [])):
            cond = s.get("Condition", {}).get("StringEquals", {})
            if cond.get("iam:PassedToService") != "ecs-tasks.amazonaws.com":
                problems.append(
                    f"{where}: iam:PassRole must carry iam:PassedToService = ecs-tasks.amazonaws.com"
                )
            if "*" in as_list(s.get("Resource")):
                problems.append(f"{where}: iam:PassRole must name the roles, not *")
    return actions


def compare(where: str, got: set[str], want: set[str], problems: list[str]) -> None:
    for a in sorted(want - got):
        problems.append(f"{where}: missing {a} (operations.rs needs it)")
    for a in sorted(got - want):
        problems.append(f"{where}: grants {a}, which no operation in operations.rs needs")


def main() -> int:
    want = table_actions()
    problems: list[str] = []
    template = cfn_yaml.load(str(TEMPLATE))
    policy = template["Resources"]["PreviewsPolicy"]["Properties"]["PolicyDocument"]
    got = policy_actions(policy, "previewd.yaml PreviewsPolicy", problems)
    compare("previewd.yaml PreviewsPolicy", got, want, problems)
    role = template["Resources"]["ImagePushRole"]["Properties"]["Policies"]
    push = next(p["PolicyDocument"] for p in role if p["PolicyName"] == "push-preview-images")
    got = policy_actions(push, "previewd.yaml ImagePushRole push-preview-images", problems)
    compare("previewd.yaml ImagePushRole push-preview-images", got, ECR_PUSH, problems)
    checked = ["deploy/cloudformation/previewd.yaml"]
    if GENERATED.exists():
        generated = json.loads(GENERATED.read_text())
        # The push statements (a configured cloud.ecr_repository) are held
        # to ECR_PUSH; the others to the registry, ecr:DescribeImages of the
        # image check included.
        push_sids = {"EcrLogin", "EcrPushPreviewImages"}
        sts = statements(generated)
        push = {"Statement": [s for s in sts if s.get("Sid") in push_sids]}
        rest = {"Statement": [s for s in sts if s.get("Sid") not in push_sids]}
        got = policy_actions(rest, "previewd-policy.json", problems)
        ecr = policy_actions(push, "previewd-policy.json (ECR push)", problems)
        if ecr:
            compare("previewd-policy.json (ECR push)", ecr, ECR_PUSH, problems)
        compare("previewd-policy.json", got, want, problems)
        checked.append("deploy/iam/previewd-policy.json")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"policy OK: {len(want)} actions from operations.rs, granted exactly in {', '.join(checked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
