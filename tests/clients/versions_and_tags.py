"""Versioning and tags as boto3 users meet them: every overwrite kept and readable by its
version id, delete markers, restoring by deleting a marker, suspension's null version,
paged version listings, conditional deletes of versions, tags per version with S3's
limits, and the refusals (bad status, malformed version ids, too many tags) changing
nothing. Environment: ENDPOINT, KEY, SECRET."""

import os

import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                  aws_access_key_id=os.environ["KEY"],
                  aws_secret_access_key=os.environ["SECRET"])


def code(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("%s(%r) succeeded" % (fn.__name__, kw))


def body(**kw):
    return s3.get_object(Bucket="vers", **kw)["Body"].read()


s3.create_bucket(Bucket="vers")
assert "Status" not in s3.get_bucket_versioning(Bucket="vers")
s3.put_object(Bucket="vers", Key="doc", Body=b"before versioning")

# Refusals change nothing.
assert code(s3.put_bucket_versioning, Bucket="vers",
            VersioningConfiguration={"Status": "Sometimes"})[1] == 400
assert "Status" not in s3.get_bucket_versioning(Bucket="vers")

s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
v = s3.get_bucket_versioning(Bucket="vers")
assert v["Status"] == "Enabled" and v["MFADelete"] == "Disabled", v

ids = []
for n in range(3):
    r = s3.put_object(Bucket="vers", Key="doc", Body=b"edit %d" % n)
    ids.append(r["VersionId"])
assert len(set(ids)) == 3 and "null" not in ids
assert body(Key="doc") == b"edit 2"
for n, vid in enumerate(ids):
    assert body(Key="doc", VersionId=vid) == b"edit %d" % n
assert body(Key="doc", VersionId="null") == b"before versioning"
assert code(s3.get_object, Bucket="vers", Key="doc", VersionId="not-a-version")[0] == \
    "InvalidArgument"
assert code(s3.get_object, Bucket="vers", Key="doc", VersionId="00000000000fffff")[0] == \
    "NoSuchVersion"

# A delete writes a marker; the key reads as gone; the versions stay readable.
d = s3.delete_object(Bucket="vers", Key="doc")
assert d["DeleteMarker"] is True
marker = d["VersionId"]
try:
    s3.get_object(Bucket="vers", Key="doc")
    raise AssertionError("a deleted key was read")
except ClientError as e:
    h = e.response["ResponseMetadata"]["HTTPHeaders"]
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert h["x-amz-delete-marker"] == "true" and h["x-amz-version-id"] == marker
try:
    s3.head_object(Bucket="vers", Key="doc", VersionId=marker)
    raise AssertionError("a delete marker was read")
except ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 405
assert body(Key="doc", VersionId=ids[1]) == b"edit 1"
assert "Contents" not in s3.list_objects_v2(Bucket="vers")
listing = s3.list_object_versions(Bucket="vers")
assert [m["VersionId"] for m in listing["DeleteMarkers"]] == [marker]
assert listing["DeleteMarkers"][0]["IsLatest"] is True
assert [x["VersionId"] for x in listing["Versions"]] == ids[::-1] + ["null"]
assert code(s3.delete_bucket, Bucket="vers")[0] == "BucketNotEmpty"

# Deleting the marker restores the key; copying an old version makes it current again.
s3.delete_object(Bucket="vers", Key="doc", VersionId=marker)
assert body(Key="doc") == b"edit 2"
c = s3.copy_object(Bucket="vers", Key="doc", CopySource={"Bucket": "vers", "Key": "doc",
                                                          "VersionId": ids[0]})
assert c["CopySourceVersionId"] == ids[0] and c["VersionId"] not in ids
assert body(Key="doc") == b"edit 0"

# A conditional delete of a version deletes only what matches.
etag1 = s3.head_object(Bucket="vers", Key="doc", VersionId=ids[1])["ETag"]
assert code(s3.delete_object, Bucket="vers", Key="doc", VersionId=ids[1],
            IfMatch='"0123"')[0] == "PreconditionFailed"
assert body(Key="doc", VersionId=ids[1]) == b"edit 1"
s3.delete_object(Bucket="vers", Key="doc", VersionId=ids[1], IfMatch=etag1)
assert code(s3.get_object, Bucket="vers", Key="doc", VersionId=ids[1])[0] == "NoSuchVersion"

# DeleteObjects with versions and without: markers and answers as S3.
out = s3.delete_objects(Bucket="vers", Delete={"Objects": [
    {"Key": "doc", "VersionId": ids[2]}, {"Key": "doc"}]})
kinds = [(x.get("VersionId"), x.get("DeleteMarker", False), x.get("DeleteMarkerVersionId"))
         for x in out["Deleted"]]
assert (ids[2], False, None) in kinds, kinds
assert any(m and mid for _, m, mid in kinds), kinds

# Paging: one entry a page still meets every version exactly once, in order.
for n in range(4):
    s3.put_object(Bucket="vers", Key="page/%d" % (n % 2), Body=b"p%d" % n)
whole = s3.list_object_versions(Bucket="vers")
want = [(x["Key"], x["VersionId"]) for x in whole.get("Versions", []) + whole.get(
    "DeleteMarkers", [])]
seen, kw = [], {}
while True:
    page = s3.list_object_versions(Bucket="vers", MaxKeys=1, **kw)
    seen += [(x["Key"], x["VersionId"]) for x in page.get("Versions", []) + page.get(
        "DeleteMarkers", [])]
    if not page["IsTruncated"]:
        break
    kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
assert sorted(seen) == sorted(want) and len(seen) == len(want), (seen, want)

# Suspended: writes are the null version and replace only it.
s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Suspended"})
r = s3.put_object(Bucket="vers", Key="page/0", Body=b"null one")
assert "VersionId" not in r
s3.put_object(Bucket="vers", Key="page/0", Body=b"null two")
vs = [x for x in s3.list_object_versions(Bucket="vers", Prefix="page/0")["Versions"]]
assert [x["VersionId"] for x in vs].count("null") == 1 and len(vs) == 3, vs
assert body(Key="page/0", VersionId="null") == b"null two"
s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})

# Tags: per version, on PUT and copy, counted on reads, under S3's limits.
t = s3.put_object(Bucket="vers", Key="tagged", Body=b"t", Tagging="team=a&tier=gold")
t1 = t["VersionId"]
assert s3.head_object(Bucket="vers", Key="tagged")["ResponseMetadata"]["HTTPHeaders"][
    "x-amz-tagging-count"] == "2"
t2 = s3.put_object(Bucket="vers", Key="tagged", Body=b"t2")["VersionId"]
s3.put_object_tagging(Bucket="vers", Key="tagged", VersionId=t1,
                      Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
assert s3.get_object_tagging(Bucket="vers", Key="tagged", VersionId=t1)["TagSet"] == [
    {"Key": "old", "Value": "yes"}]
assert s3.get_object_tagging(Bucket="vers", Key="tagged")["TagSet"] == []
too_many = {"TagSet": [{"Key": "k%d" % n, "Value": "v"} for n in range(11)]}
assert code(s3.put_object_tagging, Bucket="vers", Key="tagged", Tagging=too_many) == \
    ("InvalidTag", 400)
assert code(s3.put_object, Bucket="vers", Key="tagged", Body=b"x",
            Tagging="k=" + "v" * 257)[0] == "InvalidTag"
assert s3.get_object(Bucket="vers", Key="tagged")["Body"].read() == b"t2"
cp = s3.copy_object(Bucket="vers", Key="tag-copy", CopySource={
    "Bucket": "vers", "Key": "tagged", "VersionId": t1})
assert s3.get_object_tagging(Bucket="vers", Key="tag-copy")["TagSet"] == [
    {"Key": "old", "Value": "yes"}]
s3.copy_object(Bucket="vers", Key="tag-copy", CopySource={"Bucket": "vers", "Key": "tagged"},
               TaggingDirective="REPLACE", Tagging="fresh=1")
assert s3.get_object_tagging(Bucket="vers", Key="tag-copy")["TagSet"] == [
    {"Key": "fresh", "Value": "1"}]
s3.delete_object_tagging(Bucket="vers", Key="tagged", VersionId=t1)
assert s3.get_object_tagging(Bucket="vers", Key="tagged", VersionId=t1)["TagSet"] == []
assert code(s3.get_bucket_tagging, Bucket="vers")[0] == "NoSuchTagSet"
s3.put_bucket_tagging(Bucket="vers", Tagging={"TagSet": [{"Key": "owner", "Value": "ops"}]})
assert s3.get_bucket_tagging(Bucket="vers")["TagSet"] == [{"Key": "owner", "Value": "ops"}]
assert t2 != t1

# Every version deleted: the bucket is empty and goes.
while True:
    l = s3.list_object_versions(Bucket="vers")
    entries = l.get("Versions", []) + l.get("DeleteMarkers", [])
    if not entries:
        break
    s3.delete_objects(Bucket="vers", Delete={"Objects": [
        {"Key": x["Key"], "VersionId": x["VersionId"]} for x in entries], "Quiet": True})
s3.delete_bucket(Bucket="vers")
print("ALL OK")
