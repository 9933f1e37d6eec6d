"""Where an export writes: a bucket, a prefix in it, and Personalize's rights to write there.

Every construct that writes Personalize exports into S3 builds its destination here, so all of
them follow one set of rules for who may write where, and claim their destinations in one
registry per app.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass

from aws_cdk import Annotations, Aws, Duration, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct, IDependable

from personalize_export import schedule_rules, validation
from personalize_export.access_logs import hardened_bucket

PERSONALIZE = "personalize.amazonaws.com"
SERVICE_ROLE_S3_ACTIONS = ["s3:PutObject", "s3:ListBucket"]
SERVICE_KMS_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:ListGrants"]
KEY_POLICY_ACTIONS = [*SERVICE_KMS_ACTIONS, "kms:CreateGrant"]
_S3_KEY_UNSAFE = re.compile(r"[^a-zA-Z0-9!_.*'()/-]+")
# Where the service roles shared by exports into one given bucket live, in each stack.
SHARED_ROLES_ID = "ExportRoles"
# Warnings a user can acknowledge with Annotations.of(export).acknowledge_warning(id, reason)
# or Validations.of(export).acknowledge(Acknowledgment(id=id, reason=reason)).
BUCKET_POLICY_NOT_ADDED = "personalize-export:BucketPolicyNotAdded"
ROLE_POLICY_NOT_ADDED = "personalize-export:RolePolicyNotAdded"
KEY_POLICY_NOT_ADDED = "personalize-export:KeyPolicyNotAdded"
LIFECYCLE_RULE_NOT_ADDED = "personalize-export:LifecycleRuleNotAdded"
# A current version past `keep` becomes noncurrent (versioned buckets); it goes a day later.
NONCURRENT_GRACE = Duration.days(1)


def personalize_arn(resource: str) -> str:
    return f"arn:{Aws.PARTITION}:personalize:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def personalize_source_conditions(scope: Construct) -> dict[str, object]:
    """What Personalize may act for: this account's Personalize resources in this region only
    (the confused-deputy conditions Personalize documents for trust and resource policies)."""
    return {
        "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
        "ArnLike": {"aws:SourceArn": personalize_arn("*")},
    }


class ExportClaims:
    """What the exports of one app already use: destinations and literal job names.

    Any construct that writes exports claims here under its own path, so a clash is found
    whichever kinds of construct meet, and the problem names the construct that holds the claim
    (the construct raising it names itself).
    """

    @classmethod
    def of(cls, scope: IConstruct) -> ExportClaims:
        return _claims_by_app.setdefault(scope.node.root, cls())

    def __init__(self) -> None:
        self._destinations: dict[tuple[str, str], str] = {}
        self._job_names: dict[tuple[str, str, str], str] = {}

    def destination_clashes(self, bucket: s3.IBucket, prefix: str) -> list[str]:
        """A problem for each claim on this prefix of the bucket, or on one above or below it."""
        # A token name is the same string wherever the same bucket object is used.
        bucket_name = bucket.bucket_name
        prefixes_taken = {
            other_prefix: holder
            for (other_bucket, other_prefix), holder in self._destinations.items()
            if other_bucket == bucket_name
        }
        label = bucket.node.path if Token.is_unresolved(bucket_name) else bucket_name
        return validation.check_destination(prefix, label, prefixes_taken)

    def claim_destination(self, bucket: s3.IBucket, prefix: str, claimant: IConstruct) -> None:
        self._destinations[(bucket.bucket_name, prefix)] = claimant.node.path

    def job_name_clashes(self, job_name: str | None, claimant: IConstruct) -> list[str]:
        return validation.check_job_name_unique(
            job_name, _account_and_region(claimant), self._job_names
        )

    def claim_job_name(self, job_name: str | None, claimant: IConstruct) -> None:
        if job_name is not None and validation.is_literal(job_name):
            self._job_names[(*_account_and_region(claimant), job_name)] = claimant.node.path


_claims_by_app: weakref.WeakKeyDictionary[IConstruct, ExportClaims] = weakref.WeakKeyDictionary()


def _account_and_region(scope: IConstruct) -> tuple[str, str]:
    """Where a job name must be unique."""
    stack = Stack.of(scope)
    return (stack.account, stack.region)


@dataclass(frozen=True, kw_only=True)
class DestinationProps:
    """Where an export writes, as its user chose; None everywhere: a new bucket and role.

    :param bucket: the bucket to export into. Exports into one given bucket in a stack share one
        service role. Default: a new hardened bucket (and a role of its own).
    :param output_prefix: the key prefix inside the bucket. Default: the owner's construct path.
    :param role: the service role Personalize assumes. Default: a new role with exactly the
        rights the export needs.
    :param encryption_key: a KMS key: SSE-KMS on a new bucket, and its use granted to the role
        and to Personalize. Default: none (SSE-S3 on a new bucket).
    """

    bucket: s3.IBucket | None = None
    output_prefix: str | None = None
    role: iam.IRole | None = None
    encryption_key: kms.IKey | None = None


class ExportDestination:
    """The bucket and prefix one export writes into, and every right Personalize needs there.

    Creates, unless given, in the owner: a hardened bucket ("Bucket") and a service role
    ("ServiceRole"); exports into one given bucket share a role of the stack's instead. Grants
    the role and Personalize the bucket, prefix and key rights Personalize documents, and warns
    on the owner where a policy can't be changed from here. Creating one claims the destination
    for the app: call ``problems`` first, before any resource exists.
    """

    @staticmethod
    def problems(
        owner: Construct,
        props: DestinationProps,
        *,
        folder_length: int = 0,
        keep: Duration | None = None,
        dataset_arn: str = "",
    ) -> list[str]:
        """Every rule the destination breaks, each naming the setting, the value and the rule.

        folder_length: what each job adds under the prefix (a schedule's dated run folder);
        keep: how long the objects under the prefix are kept (see ``expire_after``);
        dataset_arn: the dataset exported, whose region a given bucket must share.
        """
        prefix = _output_prefix(owner, props.output_prefix)
        bucket_name = props.bucket.bucket_name if props.bucket else None
        return [
            *validation.check_output_prefix(
                props.output_prefix, prefix, bucket_name, folder_length
            ),
            *_destination_clashes(owner, props.bucket, prefix),
            *schedule_rules.check_keep_scope(keep, prefix, _bucket_label(props.bucket)),
            *_bucket_region_problems(owner, props.bucket, dataset_arn),
            *validation.check_role_arn(props.role.role_arn if props.role else None),
            *_role_trust_problems(props.role),
            *_key_problems(props.encryption_key, Stack.of(owner).region),
        ]

    def __init__(self, owner: Construct, props: DestinationProps) -> None:
        self._owner = owner
        self.output_prefix = _output_prefix(owner, props.output_prefix)
        self.encryption_key = props.encryption_key
        claimed = _claimable_bucket(props.bucket, self.output_prefix)
        if claimed is not None:
            ExportClaims.of(owner).claim_destination(claimed, self.output_prefix, owner)
        self.bucket: s3.IBucket = props.bucket or self._new_bucket()
        self.role: iam.IRole = props.role or (
            self._shared_service_role() if props.bucket else self._new_service_role()
        )
        self._grant_personalize_access()

    @property
    def s3_uri(self) -> str:
        """s3://bucket/prefix/ as known at synth time."""
        return f"s3://{self.bucket.bucket_name}/{self.output_prefix}"

    @property
    def object_arns(self) -> str:
        """Every object under the prefix (Personalize chooses the file names)."""
        return self.bucket.arn_for_objects(f"{self.output_prefix}*")

    @property
    def write_permissions(self) -> list[IDependable]:
        """What Personalize checks when a job starts: the role's policies and the bucket policy.

        A job must depend on them (the role itself and the bucket are referenced already).
        """
        policy = self.bucket.policy
        return [self.role, *([policy] if policy is not None else [])]

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read access to exactly the exported objects: list the prefix, get, decrypt."""
        objects = iam.Grant.add_to_principal_or_resource(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[self.object_arns],
            resource=self.bucket,
        )
        listing = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{self.output_prefix}*"]}},
        )
        grant = objects.combine(listing)
        if self.encryption_key is not None:
            grant = grant.combine(self.encryption_key.grant_decrypt(grantee))
        return grant

    def expire_after(self, keep: Duration) -> None:
        """A lifecycle rule on the prefix: objects expire `keep` after they were written, and
        the noncurrent versions that leaves (the bucket is versioned) a day later. Only a bucket
        of the app takes rules; for an imported one the owner warns."""
        if not isinstance(self.bucket, s3.Bucket):
            self._warn(
                LIFECYCLE_RULE_NOT_ADDED,
                f"bucket {self.bucket.bucket_name} can't be changed from here: add a lifecycle "
                f"rule expiring the objects under '{self.output_prefix}' (current and noncurrent "
                f"versions) after {keep.to_human_string()} yourself",
            )
            return
        self.bucket.add_lifecycle_rule(
            id=_lifecycle_rule_id(self._owner.node.path),
            prefix=self.output_prefix or None,
            expiration=keep,
            noncurrent_version_expiration=NONCURRENT_GRACE,
            abort_incomplete_multipart_upload_after=NONCURRENT_GRACE,
        )

    def grant_pass_role(self, grantee: iam.IGrantable) -> iam.Grant:
        """iam:PassRole on the service role, to Personalize only: what starting a job needs."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iam:PassRole"],
            resource_arns=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": PERSONALIZE}},
        )

    def _new_bucket(self) -> s3.Bucket:
        return hardened_bucket(
            self._owner,
            "Bucket",
            logs_prefix=_key_safe(self._owner.node.path) + "/",
            encryption_key=self.encryption_key,
        )

    def _new_service_role(self) -> iam.Role:
        return self._service_role(
            self._owner,
            "ServiceRole",
            f"Assumed by Amazon Personalize to write the export of {self._owner.node.path}",
        )

    def _shared_service_role(self) -> iam.Role:
        """Exports into one given bucket share one role: each adds only its own prefix to it."""
        stack = Stack.of(self._owner)
        holder = stack.node.try_find_child(SHARED_ROLES_ID)
        if not isinstance(holder, Construct):
            holder = Construct(stack, SHARED_ROLES_ID)
        # Short: the role's logical id is repeated in every export that uses it.
        role_id = f"Bucket{self.bucket.node.addr[:8]}"
        existing = holder.node.try_find_child(role_id)
        if isinstance(existing, iam.Role):
            return existing
        description = f"Assumed by Amazon Personalize to write exports into {self.bucket.node.path}"
        return self._service_role(holder, role_id, description)

    def _service_role(self, scope: Construct, role_id: str, description: str) -> iam.Role:
        return iam.Role(
            scope,
            role_id,
            description=description[:1000],
            assumed_by=iam.ServicePrincipal(PERSONALIZE).with_conditions(
                personalize_source_conditions(self._owner)
            ),
        )

    def _grant_personalize_access(self) -> None:
        """The bucket, prefix and key rights Personalize documents, for its role and itself."""
        self._grant_role_write()
        self._grant_bucket_policy_write()
        if self.encryption_key is not None:
            self._grant_key_access(self.encryption_key)

    def _grant_role_write(self) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=SERVICE_ROLE_S3_ACTIONS, resources=self._write_resources)
        )
        if not self._role_takes_policies():
            self._warn(
                ROLE_POLICY_NOT_ADDED,
                f"role {self.role.role_arn} can't be changed from here: it must allow "
                f"{' and '.join(SERVICE_ROLE_S3_ACTIONS)} on the bucket and on the objects under "
                f"'{self.output_prefix}' (and the key's {', '.join(SERVICE_KMS_ACTIONS)} with "
                "encryption_key)",
            )

    def _grant_bucket_policy_write(self) -> None:
        added = self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(PERSONALIZE)],
                actions=SERVICE_ROLE_S3_ACTIONS,
                resources=self._write_resources,
                conditions=personalize_source_conditions(self._owner),
            )
        )
        if not added.statement_added:
            self._warn(
                BUCKET_POLICY_NOT_ADDED,
                f"the policy of bucket {self.bucket.bucket_name} can't be changed from here: it "
                f"must allow {PERSONALIZE} {' and '.join(SERVICE_ROLE_S3_ACTIONS)} on the bucket "
                f"and on the objects under '{self.output_prefix}'",
            )

    @property
    def _write_resources(self) -> list[str]:
        return [self.bucket.bucket_arn, self.object_arns]

    def _role_takes_policies(self) -> bool:
        """An immutable imported role reports every statement as added, yet keeps no policy."""
        if isinstance(self.role, iam.Role):
            return True
        return any(isinstance(child, iam.Policy) for child in self.role.node.children)

    def _grant_key_access(self, key: kms.IKey) -> None:
        key.grant(self.role, *SERVICE_KMS_ACTIONS)
        statements = [
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(PERSONALIZE)],
                actions=KEY_POLICY_ACTIONS,
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self._owner).account}},
            )
        ]
        # Naming a role of another stack in the key policy would make the stacks depend on each
        # other; there the role's own policy (key.grant above) carries its rights.
        if Stack.of(key) is Stack.of(self.role):
            statements.append(
                iam.PolicyStatement(
                    principals=[self.role], actions=KEY_POLICY_ACTIONS, resources=["*"]
                )
            )
        added = [key.add_to_resource_policy(statement).statement_added for statement in statements]
        if not all(added):
            self._warn(
                KEY_POLICY_NOT_ADDED,
                f"the policy of key {key.key_arn} can't be changed from here: it must allow "
                f"{', '.join(KEY_POLICY_ACTIONS)} to the service role and to {PERSONALIZE}",
            )

    def _warn(self, warning_id: str, message: str) -> None:
        warn(self._owner, warning_id, message)


def warn(scope: IConstruct, warning_id: str, message: str) -> None:
    """A warning both usual ways acknowledge: Annotations.of(scope).acknowledge_warning(id) and
    Validations.of(scope).acknowledge(Acknowledgment(id=id, ...)).

    (Validations.add_warning records the id as 'Annotation::<id>', which
    Annotations.acknowledge_warning(id) does not match; add_warning_v2 records it as given, and
    Validations.acknowledge acknowledges both forms.)
    """
    Annotations.of(scope).add_warning_v2(warning_id, message)


def _output_prefix(owner: Construct, given: str | None) -> str:
    """The prefix with its trailing '/'; by default the owner's path, made safe for S3 keys."""
    if given is None:
        return _key_safe(owner.node.path) + "/"
    if Token.is_unresolved(given) or given == "" or given.endswith("/"):
        return given
    return given + "/"


def _bucket_label(bucket: s3.IBucket | None) -> str | None:
    """How a problem names a given bucket: its name, or its path when that is a token."""
    if bucket is None:
        return None
    return bucket.node.path if Token.is_unresolved(bucket.bucket_name) else bucket.bucket_name


def _claimable_bucket(bucket: s3.IBucket | None, prefix: str) -> s3.IBucket | None:
    """A new bucket is its export's alone; a prefix from a token can't be compared."""
    if bucket is None or Token.is_unresolved(prefix):
        return None
    return bucket


def _destination_clashes(owner: Construct, bucket: s3.IBucket | None, prefix: str) -> list[str]:
    claimed = _claimable_bucket(bucket, prefix)
    if claimed is None:
        return []
    return ExportClaims.of(owner).destination_clashes(claimed, prefix)


def _bucket_region_problems(
    owner: Construct, bucket: s3.IBucket | None, dataset_arn: str
) -> list[str]:
    """A given bucket's region, when known at synth: from its stack's env or its attributes."""
    if bucket is None:
        return []
    label = _bucket_label(bucket) or bucket.node.path
    region = bucket.env.region
    return validation.check_bucket_region(label, region, Stack.of(owner).region, dataset_arn)


def _role_trust_problems(role: iam.IRole | None) -> list[str]:
    """A role created in the app has its trust policy known at synth; an imported one hasn't."""
    if not isinstance(role, iam.Role):
        return []
    policy = Stack.of(role).resolve(role.assume_role_policy)
    return validation.check_role_trust(role.node.path, policy if policy is not None else {})


def _key_problems(key: kms.IKey | None, region: str) -> list[str]:
    if key is None:
        return []
    alias_name = getattr(key, "alias_name", None)
    return validation.check_kms_key(key.key_arn, alias_name, region)


def _key_safe(path: str) -> str:
    return _S3_KEY_UNSAFE.sub("-", path)


def _lifecycle_rule_id(path: str) -> str:
    """A rule id of at most 255 characters, readable and unique to the owner."""
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return f"personalize-export-{re.sub(r'[^a-zA-Z0-9-]+', '-', path)[-200:]}-{digest}"
