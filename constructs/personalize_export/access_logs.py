"""The one server access log bucket per stack that the buckets this library creates log into."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
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
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge_access_log_bucket(self.bucket)


def access_log_bucket(scope: Construct) -> s3.Bucket:
    """The access log bucket of scope's stack, created on first use.

    Other buckets in the stack may log into it too, each under its own prefix.
    """
    return AccessLogBucket.of(scope)
