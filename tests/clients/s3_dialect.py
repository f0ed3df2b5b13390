"""Where S3 as boto3 and browsers speak it asks for more than the protocol library gives:
requests dated by `Date` alone, presigned URLs valid longer than a week, form uploads refused
by their policy, unquoted GetObjectAttributes ETags, empty Content-MD5, objects stored
without a type, a bucket's location, BucketOwnerPreferred, WRITE grants on objects, part
checksums and a retried completion's checksums. Every refusal is checked to store nothing.
Environment: ENDPOINT, KEY/SECRET (bucket owner), ALT_KEY/ALT_SECRET (another key)."""

import base64
import datetime
import hashlib
import hmac
import json
import os
from email.utils import formatdate

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ["ENDPOINT"]
OWNER, ALT = os.environ["KEY"], os.environ["ALT_KEY"]


def client(key, secret, **kw):
    return boto3.client("s3", endpoint_url=E, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1", **kw)


owner = client(OWNER, os.environ["SECRET"])
alt = client(ALT, os.environ["ALT_SECRET"])


def code(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("%s(%r) succeeded" % (fn.__name__, kw))


def missing(bucket, key):
    try:
        owner.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def with_headers(c, event, headers):
    c.meta.events.register(event, lambda **kw: kw["params"]["headers"].update(headers))


owner.create_bucket(Bucket="dialect")

# --- SigV4 dated by Date alone (botocore drops X-Amz-Date when the caller sets Date).
dated = client(OWNER, os.environ["SECRET"])
with_headers(dated, "before-call.s3.PutObject", {"Date": formatdate(usegmt=True)})
dated.put_object(Bucket="dialect", Key="dated", Body=b"d")
assert owner.get_object(Bucket="dialect", Key="dated")["Body"].read() == b"d"

# --- SigV2: a bucket is created and used (botocore signs `/bucket/` for `/bucket`); a
# request dated more than 15 minutes off, or not dated readably, is refused and creates
# nothing (a captured SigV2 request cannot be replayed later).
v2 = client(OWNER, os.environ["SECRET"], config=Config(signature_version="s3"))
v2.create_bucket(Bucket="signed-v2")
v2.put_object(Bucket="signed-v2", Key="k", Body=b"v2")
assert [o["Key"] for o in v2.list_objects(Bucket="signed-v2")["Contents"]] == ["k"]
for date, want in (("Tue, 07 Jul 2010 21:53:04 GMT", "RequestTimeTooSkewed"),
                   ("Bad Date", "AccessDenied")):
    skewed = client(OWNER, os.environ["SECRET"], config=Config(signature_version="s3"))
    with_headers(skewed, "before-call.s3.CreateBucket", {"x-amz-date": date})
    assert code(skewed.create_bucket, Bucket="replayed") == (want, 403), date
    assert code(owner.head_bucket, Bucket="replayed")[1] == 404

# --- Presigned URLs (SigV4): at most a week, and not negative; refused ones read and write
# nothing. boto3 presigns with SigV2 unless told otherwise: an expired one is refused too.
v4 = client(OWNER, os.environ["SECRET"], config=Config(signature_version="s3v4"))
owner.put_object(Bucket="dialect", Key="shared", Body=b"shared")
week = v4.generate_presigned_url("get_object", Params={"Bucket": "dialect", "Key": "shared"},
                                    ExpiresIn=604800)
assert requests.get(week).content == b"shared"
for secs in (604801, -7):
    url = v4.generate_presigned_url("get_object",
                                       Params={"Bucket": "dialect", "Key": "shared"},
                                       ExpiresIn=secs)
    r = requests.get(url)
    assert r.status_code == 403 and b"shared" not in r.content, (secs, r.status_code, r.text)
for c in (v4, owner):
    url = c.generate_presigned_url("put_object", Params={"Bucket": "dialect", "Key": "late"},
                                   ExpiresIn=-1000)
    assert requests.put(url, data=b"late").status_code == 403
    assert missing("dialect", "late")

# --- GetObjectAttributes: the ETag unquoted, as S3 documents it.
put = owner.put_object(Bucket="dialect", Key="attrs", Body=b"foo")
attrs = owner.get_object_attributes(Bucket="dialect", Key="attrs", ObjectAttributes=["ETag"])
assert attrs["ETag"] == put["ETag"].strip('"') == hashlib.md5(b"foo").hexdigest(), attrs

# --- An empty Content-MD5 is InvalidDigest and stores nothing.
empty_md5 = client(OWNER, os.environ["SECRET"])
with_headers(empty_md5, "before-call.s3.PutObject", {"Content-MD5": ""})
assert code(empty_md5.put_object, Bucket="dialect", Key="md5", Body=b"x") == ("InvalidDigest", 400)
assert missing("dialect", "md5")

# --- An object stored without a type is served as binary/octet-stream.
# (boto3 sends no Content-Type unless given one.)
owner.put_object(Bucket="dialect", Key="untyped", Body=b"u")
assert owner.get_object(Bucket="dialect", Key="untyped")["ContentType"] == "binary/octet-stream"

# --- The location a bucket was created with is the one it reports.
owner.create_bucket(Bucket="placed", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
assert owner.get_bucket_location(Bucket="placed")["LocationConstraint"] == "eu-west-1"
assert owner.get_bucket_location(Bucket="dialect").get("LocationConstraint") is None

# --- Form uploads: a form its policy does not allow is 403 and stores nothing; the redirect
# after a good one carries the quoted ETag.
def form(bucket, key, conditions, extra=()):
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    policy = base64.b64encode(json.dumps({
        "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": conditions}).encode())
    sig = base64.b64encode(hmac.new(os.environ["SECRET"].encode(), policy, hashlib.sha1).digest())
    fields = [("key", key), ("AWSAccessKeyId", OWNER), ("signature", sig), ("policy", policy)]
    return fields + list(extra) + [("file", ("f.txt", b"form body"))]


r = requests.post(E + "/dialect", files=form("dialect", "wrong", [
    {"bucket": "dialect"}, ["starts-with", "$key", "foo"]]))
assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
assert missing("dialect", "wrong")
r = requests.post(E + "/dialect", files=form("dialect", "wrong", [
    {"bucket": "another"}, ["starts-with", "$key", ""]]))
assert r.status_code == 403, r.text
assert missing("dialect", "wrong")
back = E + "/dialect/landing"
r = requests.post(E + "/dialect", allow_redirects=False, files=form("dialect", "formed", [
    {"bucket": "dialect"}, ["starts-with", "$key", ""],
    ["eq", "$success_action_redirect", back]], [("success_action_redirect", back)]))
assert r.status_code == 303, r.text
etag = owner.head_object(Bucket="dialect", Key="formed")["ETag"]
assert r.headers["Location"] == back + "?bucket=dialect&key=formed&etag=%22" + \
    etag.strip('"') + "%22", r.headers["Location"]

# --- BucketOwnerPreferred: an upload with bucket-owner-full-control is the bucket owner's;
# any other is its writer's.
owner.create_bucket(Bucket="preferred", ObjectOwnership="BucketOwnerPreferred")
owner.put_bucket_policy(Bucket="preferred", Policy=json.dumps({
    "Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": [ALT]}, "Action": "s3:*",
        "Resource": ["arn:aws:s3:::preferred", "arn:aws:s3:::preferred/*"]}]}))
alt.put_object(Bucket="preferred", Key="given", Body=b"g", ACL="bucket-owner-full-control")
alt.put_object(Bucket="preferred", Key="kept", Body=b"k")
assert alt.get_object_acl(Bucket="preferred", Key="given")["Owner"]["ID"] == OWNER
assert alt.get_object_acl(Bucket="preferred", Key="kept")["Owner"]["ID"] == ALT
up = alt.create_multipart_upload(Bucket="preferred", Key="mp", ACL="bucket-owner-full-control")
parts = alt.list_parts(Bucket="preferred", Key="mp", UploadId=up["UploadId"])
assert parts["Owner"]["ID"] == OWNER

# --- A WRITE grant header on an object write is kept in the object's ACL.
granted = client(OWNER, os.environ["SECRET"])
with_headers(granted, "before-call.s3.PutObject", {
    "x-amz-grant-read": "id=" + ALT, "x-amz-grant-write": "id=" + ALT})
granted.put_object(Bucket="dialect", Key="granted", Body=b"g")
perms = sorted(g["Permission"] for g in
               owner.get_object_acl(Bucket="dialect", Key="granted")["Grants"])
assert perms == ["READ", "WRITE"], perms

# --- Multipart checksums: a part read back carries its own checksum and the object's type;
# a retried completion answers the same checksums.
size = 5 * 1024 * 1024
bodies = [bytes([65 + i]) * size for i in range(2)]
up = owner.create_multipart_upload(Bucket="dialect", Key="sums", ChecksumAlgorithm="SHA256")
done_parts = []
for n, body in enumerate(bodies, 1):
    p = owner.upload_part(Bucket="dialect", Key="sums", UploadId=up["UploadId"], PartNumber=n,
                          Body=body, ChecksumAlgorithm="SHA256")
    done_parts.append({"ETag": p["ETag"], "ChecksumSHA256": p["ChecksumSHA256"], "PartNumber": n})
first = owner.complete_multipart_upload(Bucket="dialect", Key="sums", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": done_parts})
again = owner.complete_multipart_upload(Bucket="dialect", Key="sums", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": done_parts})
assert first["ETag"] == again["ETag"]
assert first["ChecksumSHA256"] == again["ChecksumSHA256"]
assert first.get("ChecksumType") == again.get("ChecksumType") == "COMPOSITE"
part2 = owner.get_object(Bucket="dialect", Key="sums", PartNumber=2, ChecksumMode="ENABLED")
assert part2["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(bodies[1]).digest()).decode()
assert part2["ChecksumType"] == "COMPOSITE"
assert part2["Body"].read() == bodies[1]
print("ALL OK")
