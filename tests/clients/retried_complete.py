"""A multipart upload through a proxy that drops the answer to the first
CompleteMultipartUpload: boto3 (default retries) sends the Complete again and must get 200
with the object's ETag, and the object must read back whole.
Environment: ENDPOINT (the proxy), KEY, SECRET."""

import hashlib
import os

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], aws_access_key_id=os.environ["KEY"],
                  aws_secret_access_key=os.environ["SECRET"], region_name="us-east-1")
s3.create_bucket(Bucket="retried")
parts = [bytes([i]) * (5 << 20) for i in range(2)] + [b"tail"]
up = s3.create_multipart_upload(Bucket="retried", Key="obj")
etags = []
for n, body in enumerate(parts, start=1):
    r = s3.upload_part(Bucket="retried", Key="obj", UploadId=up["UploadId"], PartNumber=n, Body=body)
    etags.append({"PartNumber": n, "ETag": r["ETag"]})
done = s3.complete_multipart_upload(Bucket="retried", Key="obj", UploadId=up["UploadId"],
                                    MultipartUpload={"Parts": etags})
md5s = b"".join(hashlib.md5(p).digest() for p in parts)
want = '"%s-%d"' % (hashlib.md5(md5s).hexdigest(), len(parts))
assert done["ETag"] == want, (done["ETag"], want)
attempts = done["ResponseMetadata"]["RetryAttempts"]
assert attempts >= 1, "the first answer was dropped, so boto3 must have retried: %r" % attempts
got = s3.get_object(Bucket="retried", Key="obj")["Body"].read()
assert got == b"".join(parts), "object differs"
print("retries:", attempts)
print("ALL OK")
