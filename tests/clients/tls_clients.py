"""boto3 and awscli against a coordinator serving TLS: both verify the server certificate
against the cluster's CA (PUT, GET, multipart, listing), refuse a server their CA did not
sign, and a plain-HTTP request to the TLS port gets a clear 400. A bucket policy's
aws:SecureTransport sees these requests as secure.

Environment: ENDPOINT (https://...), PLAIN (http:// URL of the same port), CA, WRONG_CA,
KEY, SECRET.
"""
import hashlib
import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
from botocore.config import Config

E = os.environ
endpoint, ca, wrong = E["ENDPOINT"], E["CA"], E["WRONG_CA"]


def client(verify):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=E["KEY"],
        aws_secret_access_key=E["SECRET"],
        region_name="us-east-1",
        verify=verify,
        config=Config(retries={"max_attempts": 1}),
    )


s3 = client(ca)
s3.create_bucket(Bucket="secure")
body = os.urandom(300_000)
s3.put_object(Bucket="secure", Key="small", Body=body)
assert s3.get_object(Bucket="secure", Key="small")["Body"].read() == body

# Multipart: three parts of 5 MiB, 5 MiB and 1 MiB.
parts_data = [os.urandom(5 << 20), os.urandom(5 << 20), os.urandom(1 << 20)]
up = s3.create_multipart_upload(Bucket="secure", Key="big")
parts = []
for i, d in enumerate(parts_data, start=1):
    r = s3.upload_part(Bucket="secure", Key="big", UploadId=up["UploadId"], PartNumber=i, Body=d)
    parts.append({"PartNumber": i, "ETag": r["ETag"]})
s3.complete_multipart_upload(
    Bucket="secure", Key="big", UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
)
got = s3.get_object(Bucket="secure", Key="big")["Body"].read()
assert hashlib.sha256(got).digest() == hashlib.sha256(b"".join(parts_data)).digest()
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="secure")["Contents"]]
assert keys == ["big", "small"], keys

# A client trusting another CA refuses the server; nothing was written by it.
try:
    client(wrong).put_object(Bucket="secure", Key="stranger", Body=b"x")
    raise SystemExit("a client trusting another CA connected")
except botocore.exceptions.SSLError:
    pass
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="secure")["Contents"]]
assert "stranger" not in keys, keys

# Plain HTTP on the TLS port: a 400 that says what to do, not a hang.
try:
    urllib.request.urlopen(E["PLAIN"] + "/secure/small", timeout=10)
    raise SystemExit("plain HTTP was served")
except urllib.error.HTTPError as e:
    assert e.code == 400, e.code
    assert b"https://" in e.read()

# aws:SecureTransport: a policy lets anonymous requests read only over TLS; they do.
s3.put_bucket_policy(Bucket="secure", Policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::secure/*",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }],
}))
import ssl
ctx = ssl.create_default_context(cafile=ca)
with urllib.request.urlopen(endpoint + "/secure/small", context=ctx, timeout=10) as r:
    assert r.read() == body

# awscli with --ca-bundle; and refusing with the wrong bundle.
env = dict(E, AWS_ACCESS_KEY_ID=E["KEY"], AWS_SECRET_ACCESS_KEY=E["SECRET"],
           AWS_DEFAULT_REGION="us-east-1")
env.pop("AWS_CA_BUNDLE", None)
with tempfile.TemporaryDirectory() as d:
    src, back = os.path.join(d, "src"), os.path.join(d, "back")
    with open(src, "wb") as f:
        f.write(os.urandom(2 << 20))
    aws = ["aws", "--endpoint-url", endpoint]
    subprocess.run(aws + ["--ca-bundle", ca, "s3", "cp", src, "s3://secure/cli"], env=env,
                   check=True, capture_output=True)
    subprocess.run(aws + ["--ca-bundle", ca, "s3", "cp", "s3://secure/cli", back], env=env,
                   check=True, capture_output=True)
    assert open(src, "rb").read() == open(back, "rb").read()
    r = subprocess.run(aws + ["--ca-bundle", wrong, "s3", "ls", "s3://secure"], env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "SSL" in (r.stderr + r.stdout), (r.returncode, r.stderr)
print("ALL OK")
