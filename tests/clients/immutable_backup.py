"""An immutable backup repository the way a backup appliance drives one (Veeam's immutable
repositories: a bucket with object lock, COMPLIANCE retention on every object): every way to
remove or weaken a locked version is refused and the bytes stay intact; once the retention
has passed, the versions can be deleted. Also GOVERNANCE (bypassed by the bucket's owner, or
a key a bucket policy allows s3:BypassGovernanceRetention; a policy's Deny of it refuses
everyone), legal holds and a bucket's default retention.
Environment: ENDPOINT, KEY/SECRET (the repository's owner), ALT_KEY/ALT_SECRET (another key
the owner lets write)."""

import datetime
import hashlib
import json
import os
import time

import boto3
from botocore.exceptions import ClientError

E = os.environ["ENDPOINT"]
RETAIN = 4  # seconds


def client(key, secret):
    return boto3.client("s3", endpoint_url=E, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


s3 = client(os.environ["KEY"], os.environ["SECRET"])
alt = client(os.environ["ALT_KEY"], os.environ["ALT_SECRET"])


def code(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("%s(%r) succeeded" % (fn.__name__, kw))


def until(seconds):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


# A lock bucket needs versioning, and an unlocked one has no lock to read or set.
s3.create_bucket(Bucket="plain")
assert code(s3.get_object_lock_configuration, Bucket="plain") == \
    "ObjectLockConfigurationNotFoundError"
assert code(s3.put_object_lock_configuration, Bucket="plain", ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled"}) == "InvalidBucketState"
s3.put_object(Bucket="plain", Key="x", Body=b"x")
assert code(s3.put_object_retention, Bucket="plain", Key="x", Retention={
    "Mode": "COMPLIANCE", "RetainUntilDate": until(60)}) == "InvalidRequest"

s3.create_bucket(Bucket="repo", ObjectLockEnabledForBucket=True)
assert s3.get_bucket_versioning(Bucket="repo")["Status"] == "Enabled"
assert code(s3.put_bucket_versioning, Bucket="repo",
            VersioningConfiguration={"Status": "Suspended"}) == "InvalidBucketState"
assert s3.get_bucket_versioning(Bucket="repo")["Status"] == "Enabled"
# Malformed lock configurations change nothing.
for bad in ({"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {
                "Mode": "COMPLIANCE", "Days": 1, "Years": 1}}},
            {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {
                "Mode": "COMPLIANCE", "Days": 0}}}):
    assert code(s3.put_object_lock_configuration, Bucket="repo",
                ObjectLockConfiguration=bad) in ("MalformedXML", "InvalidRetentionPeriod")
assert "Rule" not in s3.get_object_lock_configuration(Bucket="repo")["ObjectLockConfiguration"]

blocks = {}
for n in range(3):
    data = os.urandom(100_000 + n)
    r = s3.put_object(Bucket="repo", Key="blocks/%d" % n, Body=data, ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=until(RETAIN))
    blocks["blocks/%d" % n] = (r["VersionId"], hashlib.sha256(data).hexdigest())
head = s3.head_object(Bucket="repo", Key="blocks/0")
assert head["ObjectLockMode"] == "COMPLIANCE", head

# Every way to remove or weaken a COMPLIANCE version is refused.
k, (vid, _) = "blocks/0", blocks["blocks/0"]
assert code(s3.delete_object, Bucket="repo", Key=k, VersionId=vid) == "AccessDenied"
assert code(s3.delete_object, Bucket="repo", Key=k, VersionId=vid,
            BypassGovernanceRetention=True) == "AccessDenied"
out = s3.delete_objects(Bucket="repo", BypassGovernanceRetention=True, Delete={"Objects": [
    {"Key": key, "VersionId": v} for key, (v, _) in blocks.items()]})
assert len(out.get("Errors", [])) == 3 and not out.get("Deleted"), out
assert code(s3.put_object_retention, Bucket="repo", Key=k, VersionId=vid, Retention={
    "Mode": "GOVERNANCE", "RetainUntilDate": until(RETAIN + 60)},
    BypassGovernanceRetention=True) == "AccessDenied"
assert code(s3.put_object_retention, Bucket="repo", Key=k, VersionId=vid, Retention={
    "Mode": "COMPLIANCE", "RetainUntilDate": until(1)}) == "AccessDenied"
assert code(s3.put_object_retention, Bucket="repo", Key=k, VersionId=vid, Retention={
    "Mode": "COMPLIANCE", "RetainUntilDate": until(-60)}) == "InvalidArgument"
# An overwrite and a plain delete add versions; the locked one stays.
s3.put_object(Bucket="repo", Key=k, Body=b"ransomware was here")
s3.delete_object(Bucket="repo", Key=k)
assert code(s3.delete_bucket, Bucket="repo") == "BucketNotEmpty"
for key, (v, digest) in blocks.items():
    got = s3.get_object(Bucket="repo", Key=key, VersionId=v)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == digest, key
# Extending is allowed.
s3.put_object_retention(Bucket="repo", Key="blocks/1", VersionId=blocks["blocks/1"][0],
                        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until(RETAIN + 1)})

# GOVERNANCE: another key allowed to write (not to bypass) cannot bypass; the owner can; a
# policy that allows s3:BypassGovernanceRetention lets the other key bypass, and one that
# denies it refuses everyone, the owner too.
WRITE = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket"]
def policy(*extra):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": [os.environ["ALT_KEY"]]}, "Action": WRITE,
         "Resource": ["arn:aws:s3:::repo", "arn:aws:s3:::repo/*"]}] + list(extra)})
s3.put_bucket_policy(Bucket="repo", Policy=policy())
g = alt.put_object(Bucket="repo", Key="gov", Body=b"g", ObjectLockMode="GOVERNANCE",
                   ObjectLockRetainUntilDate=until(3600))["VersionId"]
assert code(alt.delete_object, Bucket="repo", Key="gov", VersionId=g,
            BypassGovernanceRetention=True) == "AccessDenied"
s3.delete_object(Bucket="repo", Key="gov", VersionId=g, BypassGovernanceRetention=True)
s3.put_bucket_policy(Bucket="repo", Policy=policy(
    {"Effect": "Allow", "Principal": {"AWS": [os.environ["ALT_KEY"]]},
     "Action": "s3:BypassGovernanceRetention", "Resource": "arn:aws:s3:::repo/gov*"}))
g = alt.put_object(Bucket="repo", Key="gov2", Body=b"g", ObjectLockMode="GOVERNANCE",
                   ObjectLockRetainUntilDate=until(3600))["VersionId"]
alt.delete_object(Bucket="repo", Key="gov2", VersionId=g, BypassGovernanceRetention=True)
s3.put_bucket_policy(Bucket="repo", Policy=policy(
    {"Effect": "Deny", "Principal": "*", "Action": "s3:BypassGovernanceRetention",
     "Resource": "arn:aws:s3:::repo/*"}))
g = s3.put_object(Bucket="repo", Key="gov3", Body=b"g", ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=until(3600))["VersionId"]
assert code(s3.delete_object, Bucket="repo", Key="gov3", VersionId=g,
            BypassGovernanceRetention=True) == "AccessDenied"
assert s3.get_object(Bucket="repo", Key="gov3", VersionId=g)["Body"].read() == b"g"
s3.delete_bucket_policy(Bucket="repo")
s3.delete_object(Bucket="repo", Key="gov3", VersionId=g, BypassGovernanceRetention=True)

# A legal hold holds whatever the retention says, until it is lifted.
h = s3.put_object(Bucket="repo", Key="held", Body=b"h", ObjectLockLegalHoldStatus="ON")["VersionId"]
assert s3.get_object_legal_hold(Bucket="repo", Key="held")["LegalHold"]["Status"] == "ON"
assert code(s3.delete_object, Bucket="repo", Key="held", VersionId=h,
            BypassGovernanceRetention=True) == "AccessDenied"
s3.put_object_legal_hold(Bucket="repo", Key="held", LegalHold={"Status": "OFF"})
s3.delete_object(Bucket="repo", Key="held", VersionId=h)

# A default retention applies to versions written without one.
s3.put_object_lock_configuration(Bucket="repo", ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
d = s3.put_object(Bucket="repo", Key="defaulted", Body=b"d")["VersionId"]
r = s3.get_object_retention(Bucket="repo", Key="defaulted")["Retention"]
assert r["Mode"] == "GOVERNANCE", r
s3.delete_object(Bucket="repo", Key="defaulted", VersionId=d, BypassGovernanceRetention=True)

# After the retention has passed, everything can go, and then the bucket.
time.sleep(RETAIN + 1.5)
while True:
    l = s3.list_object_versions(Bucket="repo")
    entries = l.get("Versions", []) + l.get("DeleteMarkers", [])
    if not entries:
        break
    out = s3.delete_objects(Bucket="repo", Delete={"Objects": [
        {"Key": x["Key"], "VersionId": x["VersionId"]} for x in entries]})
    assert not out.get("Errors"), out
s3.delete_bucket(Bucket="repo")
print("ALL OK")
