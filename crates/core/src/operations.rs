//! Every AWS operation previewd calls, in one table: its service, its name,
//! the IAM action and scope that allow it, the rate-limit buckets it takes
//! from, what it is for and whether it changes anything.
//!
//! Everything that names an operation reads it from here: the AWS adapter
//! (each SDK call names its [`Op`]), the simulator (metering, throttling,
//! IAM denials), the pacer ([`crate::limits::buckets_of`]), the metric
//! labels, the IAM policy generator and `previewd doctor`'s simulation of
//! it, and the README's API table (checked by a test). An [`Op`] is a
//! variant, not a string, so a call site cannot misspell one.
//!
//! ```text
//!  Op::CreateRule ─▶ Spec { service: Elb, name: "CreateRule", scope: ElbRules,
//!                           buckets: [ElbMutating, ElbAccount], mutates, … }
//!     key()    "elbv2:CreateRule"                 (metric labels, the simulator)
//!     action() "elasticloadbalancing:CreateRule"  (IAM)
//! ```

use crate::limits::Bucket;
use std::fmt;

/// An AWS service, under one name. AWS itself spells some two ways: the
/// metric label and the simulator's keys say [`Service::label`] (`elbv2`),
/// IAM says [`Service::iam_prefix`] (`elasticloadbalancing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Ecs,
    /// Elastic Load Balancing v2: the shared listener's rules, target groups.
    Elb,
    Route53,
    Logs,
    Iam,
    Sts,
    Ec2,
    Ecr,
    /// CloudWatch metrics: the load balancer's request counts (sleep).
    CloudWatch,
}

impl Service {
    pub const ALL: [Service; 9] = [
        Service::Ecs,
        Service::Elb,
        Service::Route53,
        Service::Logs,
        Service::Iam,
        Service::Sts,
        Service::Ec2,
        Service::Ecr,
        Service::CloudWatch,
    ];

    /// The `service` label of `previewd_aws_calls_total` and the service
    /// half of a simulator key (`elbv2:CreateRule`).
    pub const fn label(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::Elb => "elbv2",
            Service::Route53 => "route53",
            Service::Logs => "logs",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Ec2 => "ec2",
            Service::Ecr => "ecr",
            Service::CloudWatch => "cloudwatch",
        }
    }

    /// The service prefix of its IAM actions.
    pub const fn iam_prefix(self) -> &'static str {
        match self {
            Service::Elb => "elasticloadbalancing",
            other => other.label(),
        }
    }

    /// The service named by either spelling.
    pub fn parse(name: &str) -> Option<Service> {
        Service::ALL
            .into_iter()
            .find(|s| s.label() == name || s.iam_prefix() == name)
    }

    /// The bucket every request of the service takes a token from besides
    /// its own category's (AWS-LIMITS.md): ELB's account bucket, Route53's
    /// all-actions one.
    pub const fn shared_buckets(self) -> &'static [Bucket] {
        match self {
            Service::Elb => &[Bucket::ElbAccount],
            Service::Route53 => &[Bucket::Route53],
            _ => &[],
        }
    }
}

/// What a call does to its resource (the README's API table's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    Observe,
    Create,
    Update,
    Delete,
}

/// Where IAM lets an action be scoped, as the Service Authorization
/// Reference allows for it; the policy generator turns each into one
/// statement with its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IamScope {
    EcsServices,
    EcsInCluster,
    /// Task-definition actions take no resource in IAM.
    EcsTaskDefinitions,
    ElbRules,
    ElbTargetGroups,
    /// ELBv2 Describe* take no resource in IAM.
    ElbReads,
    HostedZone,
    LogGroups,
    LogReads,
    /// ECR image reads: the repositories preview images are in.
    EcrImages,
    /// CloudWatch GetMetricData takes no resource in IAM.
    MetricReads,
    PassRole,
}

/// One IAM action and where it is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub service: Service,
    pub name: &'static str,
    pub scope: IamScope,
}

impl Permission {
    /// `elasticloadbalancing:AddTags`.
    pub fn action(&self) -> String {
        format!("{}:{}", self.service.iam_prefix(), self.name)
    }
}

/// Tags go on rules and target groups as they are created.
pub const ELB_ADD_TAGS: Permission = Permission {
    service: Service::Elb,
    name: "AddTags",
    scope: IamScope::ElbRules,
};
/// Tags on a service or task definition as it is created.
pub const ECS_TAG_RESOURCE: Permission = Permission {
    service: Service::Ecs,
    name: "TagResource",
    scope: IamScope::EcsServices,
};
/// Tags on a log group as it is created.
pub const LOGS_TAG_RESOURCE: Permission = Permission {
    service: Service::Logs,
    name: "TagResource",
    scope: IamScope::LogGroups,
};
/// A task definition that names roles passes them to ECS.
pub const IAM_PASS_ROLE: Permission = Permission {
    service: Service::Iam,
    name: "PassRole",
    scope: IamScope::PassRole,
};

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub op: Op,
    pub service: Service,
    /// The API name, as AWS spells it (and as the variant is named).
    pub name: &'static str,
    /// The resource it touches, in previewd's words.
    pub resource: &'static str,
    pub purposes: &'static [Purpose],
    /// Whether it changes the account (a lost response may follow it).
    pub mutates: bool,
    /// The buckets one request takes a token from; empty where AWS
    /// publishes no limit.
    pub buckets: &'static [Bucket],
    /// `Some`: the controller calls it and the generated policy grants it
    /// there. `None`: one of `previewd doctor`'s read-only checks of the
    /// deployment, which the policy does not grant.
    pub scope: Option<IamScope>,
    /// IAM actions the call also needs (tag on create, pass a role).
    pub also_needs: &'static [Permission],
}

const READS: bool = false;
const MUTATES: bool = true;

mod b {
    use crate::limits::Bucket::*;
    pub type B = &'static [crate::limits::Bucket];
    pub const ECS_SERVICE_READ: B = &[EcsServiceRead];
    pub const ECS_SERVICE_MODIFY: B = &[EcsServiceModify];
    pub const ECS_TD_READ: B = &[EcsTaskDefRead];
    pub const ECS_TD_MODIFY: B = &[EcsTaskDefModify];
    pub const ECS_CLUSTER_READ: B = &[EcsClusterRead];
    pub const ECS_TAG: B = &[EcsTag];
    pub const ELB_READ: B = &[ElbNonMutating, ElbAccount];
    pub const ELB_WRITE: B = &[ElbMutating, ElbAccount];
    pub const ROUTE53: B = &[Route53];
    pub const LOGS_ADMIN: B = &[LogsAdmin];
    pub const LOGS_CONFIG: B = &[LogsConfig];
    pub const ECR_READ: B = &[EcrRead];
    pub const CW_GET_METRIC_DATA: B = &[CloudWatchGetMetricData];
    pub const UNPUBLISHED: B = &[];
}

/// Declares [`Op`] and [`OPERATIONS`] from one list, so the enum and the
/// table cannot drift and each name is written once.
macro_rules! registry {
    ($( $service:ident $name:ident: $resource:literal, [$($purpose:ident),*], $mutates:ident,
        $buckets:ident, $scope:expr, [$($also:ident),*]; )*) => {
        /// An AWS operation previewd calls; see [`OPERATIONS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Op { $($name),* }

        /// Every operation previewd calls, in [`Op`]'s order.
        pub const OPERATIONS: &[Spec] = &[$(Spec {
            op: Op::$name,
            service: Service::$service,
            name: stringify!($name),
            resource: $resource,
            purposes: &[$(Purpose::$purpose),*],
            mutates: $mutates,
            buckets: b::$buckets,
            scope: $scope,
            also_needs: &[$($also),*],
        }),*];
    };
}

use IamScope::*;

// service operation: resource, purposes, mutates, buckets, IAM scope, also needs;
registry! {
    Logs DescribeLogGroups: "log group", [Observe], READS, LOGS_ADMIN, Some(LogReads), [];
    Logs ListTagsForResource: "log group", [Observe], READS, UNPUBLISHED, Some(LogGroups), [];
    Logs CreateLogGroup: "log group", [Create], MUTATES, LOGS_ADMIN, Some(LogGroups), [LOGS_TAG_RESOURCE];
    Logs PutRetentionPolicy: "log group", [Create, Update], MUTATES, LOGS_CONFIG, Some(LogGroups), [];
    Logs DeleteLogGroup: "log group", [Delete], MUTATES, LOGS_ADMIN, Some(LogGroups), [];
    Ecs DescribeTaskDefinition: "task definition", [Observe], READS, ECS_TD_READ, Some(EcsTaskDefinitions), [];
    Ecs ListTaskDefinitionFamilies: "task definition", [Observe], READS, ECS_TD_READ, Some(EcsTaskDefinitions), [];
    Ecs ListTaskDefinitions: "task definition", [Observe, Delete], READS, ECS_TD_READ, Some(EcsTaskDefinitions), [];
    Ecs RegisterTaskDefinition: "task definition", [Create, Update], MUTATES, ECS_TD_MODIFY, Some(EcsTaskDefinitions), [ECS_TAG_RESOURCE, IAM_PASS_ROLE];
    Ecs DeregisterTaskDefinition: "task definition", [Update, Delete], MUTATES, ECS_TD_MODIFY, Some(EcsTaskDefinitions), [];
    Ecs DescribeServices: "service", [Observe], READS, ECS_SERVICE_READ, Some(EcsServices), [];
    Ecs ListServices: "service", [Observe], READS, ECS_SERVICE_READ, Some(EcsInCluster), [];
    Ecs ListTasks: "service", [Observe], READS, ECS_CLUSTER_READ, Some(EcsInCluster), [];
    Ecs DescribeTasks: "service", [Observe], READS, ECS_CLUSTER_READ, Some(EcsInCluster), [];
    Ecs CreateService: "service", [Create], MUTATES, ECS_SERVICE_MODIFY, Some(EcsServices), [ECS_TAG_RESOURCE];
    Ecs UpdateService: "service", [Update, Delete], MUTATES, ECS_SERVICE_MODIFY, Some(EcsServices), [];
    Ecs TagResource: "service", [Update], MUTATES, ECS_TAG, Some(EcsServices), [];
    Ecs DeleteService: "service", [Delete], MUTATES, ECS_SERVICE_MODIFY, Some(EcsServices), [];
    Elb DescribeListeners: "listener rule", [Observe], READS, ELB_READ, Some(ElbReads), [];
    Elb DescribeRules: "listener rule", [Observe], READS, ELB_READ, Some(ElbReads), [];
    Elb DescribeTags: "listener rule, target group", [Observe], READS, ELB_READ, Some(ElbReads), [];
    Elb CreateRule: "listener rule", [Create], MUTATES, ELB_WRITE, Some(ElbRules), [ELB_ADD_TAGS];
    Elb ModifyRule: "listener rule", [Update], MUTATES, ELB_WRITE, Some(ElbRules), [];
    Elb SetRulePriorities: "listener rule", [Update], MUTATES, ELB_WRITE, Some(ElbRules), [];
    Elb DeleteRule: "listener rule", [Delete], MUTATES, ELB_WRITE, Some(ElbRules), [];
    Elb DescribeTargetGroups: "target group", [Observe], READS, ELB_READ, Some(ElbReads), [];
    Elb DescribeTargetHealth: "target group", [Observe], READS, ELB_READ, Some(ElbReads), [];
    Elb CreateTargetGroup: "target group", [Create], MUTATES, ELB_WRITE, Some(ElbTargetGroups), [ELB_ADD_TAGS];
    Elb DeleteTargetGroup: "target group", [Delete], MUTATES, ELB_WRITE, Some(ElbTargetGroups), [];
    Route53 ListResourceRecordSets: "DNS record", [Observe], READS, ROUTE53, Some(HostedZone), [];
    Route53 ChangeResourceRecordSets: "DNS record", [Create, Update, Delete], MUTATES, ROUTE53, Some(HostedZone), [];
    Ecr DescribeImages: "image", [Observe], READS, ECR_READ, Some(EcrImages), [];
    CloudWatch GetMetricData: "request count", [Observe], READS, CW_GET_METRIC_DATA, Some(MetricReads), [];
    // `previewd doctor`'s checks of the deployment.
    Sts GetCallerIdentity: "caller identity", [Observe], READS, UNPUBLISHED, None, [];
    Ecs DescribeClusters: "cluster", [Observe], READS, UNPUBLISHED, None, [];
    Route53 GetHostedZone: "hosted zone", [Observe], READS, ROUTE53, None, [];
    Ec2 DescribeSubnets: "subnet", [Observe], READS, UNPUBLISHED, None, [];
    Ec2 DescribeSecurityGroups: "security group", [Observe], READS, UNPUBLISHED, None, [];
    Iam GetRole: "task role", [Observe], READS, UNPUBLISHED, None, [];
    Iam SimulatePrincipalPolicy: "caller's policy", [Observe], READS, UNPUBLISHED, None, [];
    Ecr GetLifecyclePolicy: "image repository", [Observe], READS, UNPUBLISHED, None, [];
}

impl Op {
    /// Its row of [`OPERATIONS`].
    pub fn spec(self) -> &'static Spec {
        &OPERATIONS[self as usize]
    }

    pub fn service(self) -> Service {
        self.spec().service
    }

    /// The API name: `CreateRule`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The IAM action that allows it: `elasticloadbalancing:CreateRule`.
    pub fn action(self) -> String {
        format!("{}:{}", self.service().iam_prefix(), self.name())
    }

    /// The simulator's key: `elbv2:CreateRule`.
    pub fn key(self) -> String {
        format!("{}:{}", self.service().label(), self.name())
    }

    pub fn buckets(self) -> &'static [Bucket] {
        self.spec().buckets
    }

    pub fn mutates(self) -> bool {
        self.spec().mutates
    }

    /// The IAM permission for the operation itself, if the policy grants it.
    pub fn permission(self) -> Option<Permission> {
        self.spec().scope.map(|scope| Permission {
            service: self.service(),
            name: self.name(),
            scope,
        })
    }

    /// The operation a key names, in either spelling (`elbv2:CreateRule`,
    /// `elasticloadbalancing:CreateRule`).
    pub fn parse(key: &str) -> Option<Op> {
        let (service, name) = key.split_once(':')?;
        let service = Service::parse(service)?;
        OPERATIONS
            .iter()
            .find(|s| s.service == service && s.name == name)
            .map(|s| s.op)
    }
}

impl fmt::Display for Op {
    /// The simulator's key, as [`Op::key`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service().label(), self.name())
    }
}

/// The controller's operations: those the generated policy grants.
pub fn controller_operations() -> impl Iterator<Item = &'static Spec> {
    OPERATIONS.iter().filter(|s| s.scope.is_some())
}

/// Every IAM permission the controller needs: each of its operations and
/// what they also need, once each, by action.
pub fn required_permissions() -> Vec<Permission> {
    let mut out: Vec<Permission> = controller_operations()
        .flat_map(|s| {
            s.op.permission()
                .into_iter()
                .chain(s.also_needs.iter().copied())
        })
        .collect();
    out.sort_by_key(|p| p.action());
    out.dedup_by_key(|p| p.action());
    out
}

/// The IAM action for a key in either spelling: `elbv2:X` is
/// `elasticloadbalancing:X`; a key of no known service is kept as it is.
pub fn iam_action(key: &str) -> String {
    match key.split_once(':') {
        Some((service, name)) => match Service::parse(service) {
            Some(s) => format!("{}:{name}", s.iam_prefix()),
            None => key.to_string(),
        },
        None => key.to_string(),
    }
}

#[cfg(test)]
#[path = "operations_tests.rs"]
mod tests;
