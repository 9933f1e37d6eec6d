"""Hardened buckets, and the one access log bucket per stack that they log into."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from personalize_export.acknowledgments import acknowledge_access_log_bucket

ACCESS_LOGS_ID = "PersonalizeExportAccessLogs"
# Grant log delivery through a bucket policy, never the LogDeliveryWrite ACL, whatever the app's
# feature flags say: the bucket enforces bucket-owner object ownership, which disables ACLs.
LOG_DELIVERY_BY_POLICY_FLAG = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


class AccessLogBucket(Construct):
    """Private, TLS-only, SSE-S3 (log delivery cannot use SSE-KMS), versioned, retained."""

    @classmethod
    def of(cls, scope: Construct) -> s3.Bucket:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(ACCESS_LOGS_ID)
        if isinstance(existing, AccessLogBucket):
            return existing.bucket
        return cls(stack, ACCESS_LOGS_ID).bucket

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.node.set_context(LOG_DELIVERY_BY_POLICY_FLAG, True)
        self.bucket = hardened_bucket(self, "Bucket", logs_prefix=None)
        acknowledge_access_log_bucket(self.bucket)


def access_log_bucket(scope: Construct) -> s3.Bucket:
    """The access log bucket of scope's stack, created on first use.

    Other buckets in the stack may log into it too, each under its own prefix.
    """
    return AccessLogBucket.of(scope)


def hardened_bucket(
    scope: Construct,
    construct_id: str,
    *,
    logs_prefix: str | None,
    encryption_key: kms.IKey | None = None,
) -> s3.Bucket:
    """Private, TLS-only, encrypted (SSE-S3, or SSE-KMS with the key), versioned, ACLs off and
    retained on delete and replacement; logs to the stack's access log bucket under logs_prefix
    (None: no access logs, for the access log bucket itself)."""
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=True if encryption_key else None,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        server_access_logs_bucket=access_log_bucket(scope) if logs_prefix is not None else None,
        server_access_logs_prefix=logs_prefix,
    )
