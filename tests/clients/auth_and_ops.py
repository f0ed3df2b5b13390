"""Drives a Tessera endpoint with boto3 (the real client, its default settings) and checks
signatures, refusals and the S3 operations the edge implements. Exits non-zero on the first
failure. Environment: ENDPOINT, KEY1, SECRET1 (a key), KEY2, SECRET2 (another key)."""
import hashlib
import os
import sys
import time

import boto3
import botocore
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ["ENDPOINT"]


def client(key, secret, **kw):
    return boto3.client("s3", endpoint_url=E, aws_access_key_id=key,
                        aws_secret_access_key=secret, region_name="us-east-1", **kw)


def code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return "OK"


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


a = client(os.environ["KEY1"], os.environ["SECRET1"])
b = client(os.environ["KEY2"], os.environ["SECRET2"])
a.create_bucket(Bucket="alpha")
body = os.urandom(1 << 20)
a.put_object(Bucket="alpha", Key="x/one", Body=body)
got = a.get_object(Bucket="alpha", Key="x/one")
check(got["Body"].read() == body, "signed PUT and GET round trip")
check(got["ETag"].strip('"') == hashlib.md5(body).hexdigest(), "ETag is the MD5 of the body")

# Refusals, each changing nothing.
check(code(lambda: b.get_object(Bucket="alpha", Key="x/one")) == "AccessDenied",
      "another key cannot read")
check(code(lambda: b.put_object(Bucket="alpha", Key="x/one", Body=b"evil")) == "AccessDenied",
      "another key cannot write")
check(code(lambda: b.delete_object(Bucket="alpha", Key="x/one")) == "AccessDenied",
      "another key cannot delete")
check("alpha" not in [x["Name"] for x in b.list_buckets()["Buckets"]],
      "ListBuckets shows only the caller's buckets")
wrong = client(os.environ["KEY1"], "not-the-secret-at-all-000000000000000000")
check(code(lambda: wrong.put_object(Bucket="alpha", Key="x/one", Body=b"evil")) == "SignatureDoesNotMatch",
      "wrong secret: SignatureDoesNotMatch")
unknown = client("TKNOSUCHKEY000000000", "whatever-secret-0000000000000000000000000")
check(code(lambda: unknown.put_object(Bucket="alpha", Key="x/one", Body=b"evil")) == "InvalidAccessKeyId",
      "unknown key: InvalidAccessKeyId")
r = requests.put(f"{E}/alpha/x/one", data=b"evil")
check(r.status_code == 403 and b"AccessDenied" in r.content, "unsigned PUT: AccessDenied")
r = requests.get(f"{E}/alpha/x/one")
check(r.status_code == 403, "unsigned GET refused")

# Clock skew: sign as if 20 minutes ago.
import datetime as _dt
import botocore.auth as _auth
_Real = _dt.datetime
class _Skewed(_Real):
    @classmethod
    def utcnow(cls):
        return _Real.utcnow() - _dt.timedelta(minutes=20)
    @classmethod
    def now(cls, tz=None):
        return _Real.now(tz) - _dt.timedelta(minutes=20)
_auth.datetime.datetime = _Skewed
skewed = client(os.environ["KEY1"], os.environ["SECRET1"])
check(code(lambda: skewed.put_object(Bucket="alpha", Key="x/one", Body=b"evil")) == "RequestTimeTooSkewed",
      "clock skew over 15 minutes: RequestTimeTooSkewed")
_auth.datetime.datetime = _Real

# Presigned URLs.
url = a.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "x/one"}, ExpiresIn=60)
check(requests.get(url).content == body, "presigned GET works")
tampered = url.replace("Signature=", "Signature=0")
check(requests.get(tampered).status_code == 403, "tampered presigned GET refused")
short = a.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "x/one"}, ExpiresIn=1)
time.sleep(2.5)
check(requests.get(short).status_code == 403, "expired presigned GET refused")
put_url = a.generate_presigned_url("put_object", Params={"Bucket": "alpha", "Key": "x/presigned"}, ExpiresIn=60)
check(requests.put(put_url, data=b"via presigned").status_code == 200, "presigned PUT works")
check(a.get_object(Bucket="alpha", Key="x/presigned")["Body"].read() == b"via presigned", "presigned PUT stored")

# Signed payload hash that does not match the body.
from botocore.awsrequest import AWSRequest
from botocore.auth import SigV4Auth
from botocore.credentials import Credentials
req = AWSRequest(method="PUT", url=f"{E}/alpha/x/one", data=b"evil",
                 headers={"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()})
SigV4Auth(Credentials(os.environ["KEY1"], os.environ["SECRET1"]), "s3", "us-east-1").add_auth(req)
r = requests.put(req.url, data=b"evil", headers=dict(req.headers))
check(r.status_code == 400 and b"XAmzContentSHA256Mismatch" in r.content,
      "payload hash mismatch: XAmzContentSHA256Mismatch")
check(a.get_object(Bucket="alpha", Key="x/one")["Body"].read() == body, "the object is unchanged after every refusal")

# Checksums: a wrong CRC32 is refused, the right one stored and returned.
check(code(lambda: a.put_object(Bucket="alpha", Key="x/crc", Body=b"hello", ChecksumCRC32="AAAAAA==")) == "BadDigest",
      "wrong CRC32: BadDigest")
check(code(lambda: a.head_object(Bucket="alpha", Key="x/crc")) == "404", "nothing stored after BadDigest")
a.put_object(Bucket="alpha", Key="x/crc", Body=b"hello", ChecksumAlgorithm="CRC32")
h = a.head_object(Bucket="alpha", Key="x/crc", ChecksumMode="ENABLED")
check(h.get("ChecksumCRC32") == "NhCmhg==", "CRC32 stored and returned with checksum mode")
check(code(lambda: a.put_object(Bucket="alpha", Key="x/md5", Body=b"hello", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")) == "BadDigest",
      "wrong Content-MD5: BadDigest")
for bad in ("YWJj", "not base64!"):
    check(code(lambda: a.put_object(Bucket="alpha", Key="x/md5", Body=b"hello", ContentMD5=bad)) == "InvalidDigest",
          "malformed Content-MD5 %r: InvalidDigest" % bad)
check(code(lambda: a.head_object(Bucket="alpha", Key="x/md5")) in ("404", "NoSuchKey"),
      "nothing stored after a bad Content-MD5")

# Conditional requests.
etag = a.head_object(Bucket="alpha", Key="x/one")["ETag"]
check(code(lambda: a.get_object(Bucket="alpha", Key="x/one", IfNoneMatch=etag)) == "304", "If-None-Match: 304")
check(code(lambda: a.get_object(Bucket="alpha", Key="x/one", IfMatch='"00"')) == "PreconditionFailed", "If-Match: 412")
check(code(lambda: a.put_object(Bucket="alpha", Key="x/one", Body=b"new", IfNoneMatch="*")) == "PreconditionFailed",
      "If-None-Match: * on an existing key: 412")
a.put_object(Bucket="alpha", Key="x/fresh", Body=b"first")
check(a.get_object(Bucket="alpha", Key="x/fresh")["Body"].read() == b"first", "plain PUT of a new key")

# Copy, batch delete, listings.
a.copy_object(Bucket="alpha", Key="x/copy", CopySource={"Bucket": "alpha", "Key": "x/one"})
check(a.get_object(Bucket="alpha", Key="x/copy")["Body"].read() == body, "CopyObject copies the bytes")
for i in range(5):
    a.put_object(Bucket="alpha", Key=f"del/{i}", Body=b"d")
r = a.delete_objects(Bucket="alpha", Delete={"Objects": [{"Key": f"del/{i}"} for i in range(5)], "Quiet": True})
check(not r.get("Errors") and a.list_objects_v2(Bucket="alpha", Prefix="del/")["KeyCount"] == 0, "DeleteObjects (quiet)")
v1 = a.list_objects(Bucket="alpha", Prefix="x/")
check([o["Key"] for o in v1["Contents"]] == ["x/copy", "x/crc", "x/fresh", "x/one", "x/presigned"], "ListObjects v1")
vs = a.list_object_versions(Bucket="alpha", Prefix="x/")
check(all(v["VersionId"] == "null" for v in vs["Versions"]) and len(vs["Versions"]) == 5, "ListObjectVersions")
check(code(lambda: a.get_bucket_website(Bucket="alpha")) == "NotImplemented",
      "GetBucketWebsite: NotImplemented")
check(code(lambda: a.get_bucket_lifecycle_configuration(Bucket="alpha")) == "NoSuchLifecycleConfiguration",
      "GetBucketLifecycleConfiguration without rules: NoSuchLifecycleConfiguration")
# Conditional PUT with boto3's own parameter: the first writer wins, the second gets 412.
check(a.put_object(Bucket="alpha", Key="y/cond", Body=b"first", IfNoneMatch="*")["ETag"] != "", "If-None-Match * on a new key")
check(code(lambda: a.put_object(Bucket="alpha", Key="y/cond", Body=b"second", IfNoneMatch="*")) == "PreconditionFailed",
      "If-None-Match * on an existing key: PreconditionFailed")
check(a.get_object(Bucket="alpha", Key="y/cond")["Body"].read() == b"first", "the loser changed nothing")
print("ALL OK")
