"""Lifecycle rules the way an operator sets them with boto3, on a coordinator whose lifecycle
day lasts one second: current versions expire (deleted in an unversioned bucket, hidden by a
delete marker in a versioned one), noncurrent versions go after their days except the newest
ones kept, lone delete markers go, old incomplete uploads are aborted; tag, size and prefix
filters pick exactly what they name; a version under object lock retention is never deleted;
x-amz-expiration tells when an object will go; malformed or unsupported configurations are
refused and change nothing. The worker's progress shows in /workers and its actions in the
metrics.
Environment: ENDPOINT, KEY/SECRET, ADMIN, ADMIN_TOKEN."""

import datetime
import json
import os
import time
import urllib.request

import boto3
from botocore.exceptions import ClientError

E = os.environ["ENDPOINT"]
s3 = boto3.client("s3", endpoint_url=E, region_name="us-east-1",
                  aws_access_key_id=os.environ["KEY"],
                  aws_secret_access_key=os.environ["SECRET"])
DAY = 1.0  # seconds, as the coordinator was started


def admin(path):
    req = urllib.request.Request(os.environ["ADMIN"] + path, headers={
        "Authorization": "Bearer " + os.environ["ADMIN_TOKEN"]})
    with urllib.request.urlopen(req) as r:
        return r.read().decode()


def code(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("%s(%r) succeeded" % (fn.__name__, kw))


def keys(bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def versions(bucket):
    r = s3.list_object_versions(Bucket=bucket)
    return ([(v["Key"], v["VersionId"]) for v in r.get("Versions", [])],
            [(m["Key"], m["VersionId"]) for m in r.get("DeleteMarkers", [])])


def wait_for(what, check, days=8):
    deadline = time.time() + days * DAY
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


# --- Malformed and unsupported configurations change nothing. ---
s3.create_bucket(Bucket="logs")
assert code(s3.get_bucket_lifecycle_configuration, Bucket="logs") == \
    "NoSuchLifecycleConfiguration"
good = {"Rules": [
    {"ID": "old-logs", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
     "Expiration": {"Days": 2}},
    {"ID": "tagged", "Status": "Enabled",
     "Filter": {"Tag": {"Key": "expire", "Value": "yes"}}, "Expiration": {"Days": 2}},
    {"ID": "big", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "size/", "ObjectSizeGreaterThan": 1000}},
     "Expiration": {"Days": 2}},
    {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
]}
s3.put_bucket_lifecycle_configuration(Bucket="logs", LifecycleConfiguration=good)
stored = s3.get_bucket_lifecycle_configuration(Bucket="logs")["Rules"]
assert [r["ID"] for r in stored] == ["old-logs", "tagged", "big", "uploads", "off"], stored
assert stored[0]["Filter"] == {"Prefix": "tmp/"} and stored[0]["Expiration"] == {"Days": 2}
assert stored[2]["Filter"]["And"] == {"Prefix": "size/", "ObjectSizeGreaterThan": 1000}
bad_configs = [
    ({"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}}]},
     "InvalidArgument"),
    ({"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}},
                {"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 2}}]},
     "InvalidArgument"),
    ({"Rules": [{"ID": "x" * 256, "Status": "Enabled", "Filter": {},
                 "Expiration": {"Days": 1}}]}, "InvalidArgument"),
    ({"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {},
                 "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]}, "NotImplemented"),
    ({"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}}]}, "InvalidRequest"),
    ({"Rules": [{"ID": "a", "Status": "Enabled",
                 "Filter": {"Tag": {"Key": "k", "Value": "v"}},
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]},
     "InvalidArgument"),
    ({"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {},
                 "Expiration": {"Date": datetime.datetime(2030, 1, 1, 12, 0)}}]},
     "InvalidArgument"),
]
for cfg, want in bad_configs:
    got = code(s3.put_bucket_lifecycle_configuration, Bucket="logs", LifecycleConfiguration=cfg)
    assert got == want, (cfg, got)
    assert s3.get_bucket_lifecycle_configuration(Bucket="logs")["Rules"] == stored
assert code(s3.put_bucket_lifecycle_configuration, Bucket="nobucket",
            LifecycleConfiguration=good) == "NoSuchBucket"

# --- An unversioned bucket: prefix, tag and size filters. ---
bodies = {}
for k in ["tmp/a", "tmp/b", "keep/a", "tagged-yes", "tagged-no", "size/small", "size/big",
          "sizeless/big"]:
    body = (k.encode() * 400)[:3000 if "big" in k else 100]
    bodies[k] = body
    tagging = "expire=yes" if k == "tagged-yes" else "expire=no"
    r = s3.put_object(Bucket="logs", Key=k, Body=body, Tagging=tagging)
    exp = r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
    will_go = k.startswith("tmp/") or k in ("tagged-yes", "size/big")
    assert (exp is not None) == will_go, (k, exp)
    if exp:
        assert exp.startswith('expiry-date="') and 'rule-id="' in exp, exp
h = s3.head_object(Bucket="logs", Key="tmp/a")["ResponseMetadata"]["HTTPHeaders"]
assert 'rule-id="old-logs"' in h["x-amz-expiration"], h
assert "x-amz-expiration" not in \
    s3.head_object(Bucket="logs", Key="keep/a")["ResponseMetadata"]["HTTPHeaders"]
up_old = s3.create_multipart_upload(Bucket="logs", Key="tmp/upload")["UploadId"]
up_keep = s3.create_multipart_upload(Bucket="logs", Key="keep/upload")["UploadId"]
s3.upload_part(Bucket="logs", Key="tmp/upload", UploadId=up_old, PartNumber=1,
               Body=b"p" * 1000)
expired = {"tmp/a", "tmp/b", "tagged-yes", "size/big"}
wait_for("the logs bucket's expiry",
         lambda: keys("logs") == sorted(set(bodies) - expired))
for k in set(bodies) - expired:
    assert s3.get_object(Bucket="logs", Key=k)["Body"].read() == bodies[k], k
wait_for("the old upload's abort", lambda: [u["Key"] for u in s3.list_multipart_uploads(
    Bucket="logs").get("Uploads", [])] == ["keep/upload"])
assert code(s3.list_parts, Bucket="logs", Key="tmp/upload", UploadId=up_old) == "NoSuchUpload"
s3.abort_multipart_upload(Bucket="logs", Key="keep/upload", UploadId=up_keep)

# Deleting the configuration stops it: a new tmp/ object stays.
s3.delete_bucket_lifecycle(Bucket="logs")
assert code(s3.get_bucket_lifecycle_configuration, Bucket="logs") == \
    "NoSuchLifecycleConfiguration"
s3.put_object(Bucket="logs", Key="tmp/after", Body=b"stays")
time.sleep(4 * DAY)
assert s3.get_object(Bucket="logs", Key="tmp/after")["Body"].read() == b"stays"

# --- A versioned bucket: noncurrent versions, the newest kept, lone delete markers. ---
s3.create_bucket(Bucket="history")
s3.put_bucket_versioning(Bucket="history", VersioningConfiguration={"Status": "Enabled"})
ids = [s3.put_object(Bucket="history", Key="doc", Body=b"v%d" % i)["VersionId"]
       for i in range(4)]
gone_id = s3.put_object(Bucket="history", Key="gone", Body=b"old")["VersionId"]
marker = s3.delete_object(Bucket="history", Key="gone")["VersionId"]
s3.put_object(Bucket="history", Key="current", Body=b"current")
s3.put_bucket_lifecycle_configuration(Bucket="history", LifecycleConfiguration={"Rules": [
    {"ID": "docs", "Status": "Enabled", "Filter": {"Prefix": "doc"},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
    {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "gone"},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
     "Expiration": {"ExpiredObjectDeleteMarker": True}}]})
wait_for("noncurrent expiry",
         lambda: (lambda v: len(v[0]) == 3 and not v[1])(versions("history")))
vs, markers = versions("history")
assert sorted(k for k, _ in vs) == ["current", "doc", "doc"], vs
# The current version and the newest noncurrent one stay, with their bytes.
assert s3.get_object(Bucket="history", Key="doc")["Body"].read() == b"v3"
assert s3.get_object(Bucket="history", Key="doc", VersionId=ids[2])["Body"].read() == b"v2"
for old in ids[:2] + [gone_id]:
    assert code(s3.get_object, Bucket="history", Key="doc" if old != gone_id else "gone",
                VersionId=old) in ("NoSuchVersion", "NoSuchKey"), old
assert s3.get_object(Bucket="history", Key="current")["Body"].read() == b"current"
# `tessera bucket info` (GET /buckets/NAME) shows versioning and the rules; /stats the
# current and noncurrent usage.
info = json.loads(admin("/buckets/history"))
assert info["versioning"] == "Enabled" and [r["id"] for r in info["lifecycle"]] == \
    ["docs", "markers"], info
usage = [b for b in json.loads(admin("/stats"))["buckets"] if b["name"] == "history"][0]
assert usage["objects"] == 2 and usage["noncurrent_objects"] == 1, usage
assert usage["noncurrent_bytes"] == 2 and usage["delete_markers"] == 0, usage

# --- Object lock: an expired current version gets a delete marker; the locked noncurrent
# version is kept with its bytes however long its rule says it is due. ---
s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=600)
locked = s3.put_object(Bucket="vault", Key="backup", Body=b"precious",
                       ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
                       ChecksumAlgorithm="SHA256")["VersionId"]
s3.put_bucket_lifecycle_configuration(Bucket="vault", LifecycleConfiguration={"Rules": [
    {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""},
     "Expiration": {"Days": 1}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
wait_for("the vault's delete marker", lambda: versions("vault")[1] != [])
time.sleep(4 * DAY)
vs, markers = versions("vault")
assert vs == [("backup", locked)], vs
assert s3.get_object(Bucket="vault", Key="backup", VersionId=locked)["Body"].read() == \
    b"precious"

# --- The worker shows what it did. ---
workers = json.loads(admin("/workers"))["workers"]
lc = [w for w in workers if w["name"] == "lifecycle"]
assert lc and lc[0]["passes"] > 0 and "versions judged" in (lc[0]["last_result"] or ""), lc
metrics = admin("/metrics")
for action in ("expired", "noncurrent", "delete_marker", "upload", "locked_kept"):
    line = [m for m in metrics.splitlines()
            if m.startswith("tessera_lifecycle_actions_total") and 'action="%s"' % action in m]
    assert line and float(line[0].split()[-1]) > 0, (action, line)
print("ALL OK")
