"""What a boto3 user does, with boto3's default settings (run by the current boto3 and by
Debian's older python3-boto3): make a bucket, upload 1 KiB / 1 MiB / 100 MiB+1 (multipart
through upload_file), list past 1000 keys, download and compare sha256, copy, batch delete,
presigned GET and PUT, abort an upload.

Environment: ENDPOINT, KEY, SECRET, BUCKET, FILES (a folder with small, medium, big),
SHARED (a bucket holding 1001 keys under many/).
"""

import hashlib
import http.client
import urllib.parse
import os
import sys
import urllib.request

import boto3
from botocore.config import Config

endpoint, bucket, files = os.environ["ENDPOINT"], os.environ["BUCKET"], os.environ["FILES"]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=os.environ["KEY"],
    aws_secret_access_key=os.environ["SECRET"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}),
)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


s3.create_bucket(Bucket=bucket)
for name in ["small", "medium", "big"]:
    src = os.path.join(files, name)
    s3.upload_file(src, bucket, "up/" + name)
    dst = os.path.join(files, name + ".boto3." + bucket)
    s3.download_file(bucket, "up/" + name, dst)
    check(sha(src) == sha(dst), f"{name} round trip, sha256 equal")
    os.remove(dst)
head = s3.head_object(Bucket=bucket, Key="up/big")
check(head["ETag"].strip('"').endswith("-" + str(-(-os.path.getsize(os.path.join(files, "big")) // (8 << 20)))),
      "100 MiB+1 went multipart: " + head["ETag"])

keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["SHARED"], Prefix="many/"):
    keys += [o["Key"] for o in page.get("Contents", [])]
check(len(keys) == 1001 and len(set(keys)) == 1001, f"listed {len(keys)} keys past 1000")

s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "up/medium"})
body = s3.get_object(Bucket=bucket, Key="copied")["Body"].read()
check(hashlib.sha256(body).hexdigest() == sha(os.path.join(files, "medium")), "server-side copy")

url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "up/small"}, ExpiresIn=300)
with urllib.request.urlopen(url) as r:
    check(hashlib.sha256(r.read()).hexdigest() == sha(os.path.join(files, "small")), "presigned GET")
url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300)
# A PUT that sends no Content-Type, as the URL was signed without one (urllib would add one).
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.netloc)
conn.request("PUT", u.path + "?" + u.query, body=b"via a presigned PUT")
r = conn.getresponse()
check(r.status == 200, f"presigned PUT ({r.status} {r.read()[:200]!r})")
check(s3.get_object(Bucket=bucket, Key="presigned")["Body"].read() == b"via a presigned PUT", "presigned PUT stored")

up = s3.create_multipart_upload(Bucket=bucket, Key="aborted")
s3.upload_part(Bucket=bucket, Key="aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * (5 << 20))
listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
check(any(u["UploadId"] == up["UploadId"] for u in listed), "upload listed")
s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=up["UploadId"])
check(not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "upload aborted")

all_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in all_keys]})
check(len(resp.get("Deleted", [])) == len(all_keys) and not resp.get("Errors"), f"batch delete of {len(all_keys)}")
check(s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0, "bucket empty")
s3.delete_bucket(Bucket=bucket)
print("ALL OK", boto3.__version__)
