"""ACLs, bucket policies, the public access block, CORS and browser form uploads, as boto3
users and plain HTTP clients (no signature) meet them. Every refusal is checked to have
changed nothing.
Environment: ENDPOINT, KEY/SECRET (owner), ALT_KEY/ALT_SECRET (another key)."""

import json
import os

import boto3
import requests
from botocore.exceptions import ClientError

E = os.environ["ENDPOINT"]


def client(key, secret):
    return boto3.client("s3", endpoint_url=E, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1")


owner = client(os.environ["KEY"], os.environ["SECRET"])
alt = client(os.environ["ALT_KEY"], os.environ["ALT_SECRET"])
OWNER, ALT = os.environ["KEY"], os.environ["ALT_KEY"]


def code(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("%s(%r) succeeded" % (fn.__name__, kw))


def anon(method, path, **kw):
    return requests.request(method, E + path, **kw)


# --- Nothing is open to a stranger by default.
owner.create_bucket(Bucket="private")
owner.put_object(Bucket="private", Key="secret", Body=b"s")
assert anon("GET", "/private/secret").status_code == 403
assert anon("GET", "/private").status_code == 403
assert anon("PUT", "/private/new", data=b"x").status_code == 403
assert code(alt.get_object, Bucket="private", Key="secret") == "AccessDenied"
assert code(alt.put_object, Bucket="private", Key="new", Body=b"x") == "AccessDenied"
assert "Contents" not in owner.list_objects_v2(Bucket="private", Prefix="new")
assert anon("GET", "/").status_code == 200 and "<Name>" not in anon("GET", "/").text

# --- Canned ACLs: a public-read bucket and object are readable without a signature, and
# nothing else is: writes stay refused, other buckets stay closed.
owner.create_bucket(Bucket="public", ACL="public-read")
owner.put_object(Bucket="public", Key="open", Body=b"hello", ACL="public-read")
owner.put_object(Bucket="public", Key="closed", Body=b"no")
assert anon("GET", "/public/open").content == b"hello"
assert anon("GET", "/public/closed").status_code == 403
assert "<Key>open</Key>" in anon("GET", "/public?list-type=2").text
assert anon("PUT", "/public/new", data=b"x").status_code == 403
assert anon("DELETE", "/public/open").status_code == 403
assert anon("GET", "/private/secret").status_code == 403
assert owner.get_object(Bucket="public", Key="open")["Body"].read() == b"hello"
acl = owner.get_bucket_acl(Bucket="public")
assert acl["Owner"]["ID"] == OWNER, acl["Owner"]
grants = {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]}
assert grants == {("http://acs.amazonaws.com/groups/global/AllUsers", "READ"), (OWNER, "FULL_CONTROL")}, grants

# Grants to a key: alt may read one object, not the others; its writes stay refused.
owner.put_object_acl(Bucket="private", Key="secret", GrantRead="id=" + ALT)
assert alt.get_object(Bucket="private", Key="secret")["Body"].read() == b"s"
assert code(alt.put_object, Bucket="private", Key="secret", Body=b"overwrite") == "AccessDenied"
assert owner.get_object(Bucket="private", Key="secret")["Body"].read() == b"s"
# A public-read-write bucket takes alt's writes; alt owns what it wrote.
owner.create_bucket(Bucket="dropbox", ACL="public-read-write")
alt.put_object(Bucket="dropbox", Key="from-alt", Body=b"a")
assert owner.get_object_acl(Bucket="dropbox", Key="from-alt")["Owner"]["ID"] == ALT
listed = owner.list_objects(Bucket="dropbox")["Contents"][0]["Owner"]
assert listed["ID"] == ALT, listed

# Refusals change nothing: a malformed ACL, a grant to an unknown key, a bad canned name.
before = owner.get_bucket_acl(Bucket="public")["Grants"]
assert code(owner.put_bucket_acl, Bucket="public",
            AccessControlPolicy={"Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "NOSUCHKEY"},
                                             "Permission": "READ"}],
                                 "Owner": {"ID": OWNER}}) == "InvalidArgument"
assert code(owner.put_bucket_acl, Bucket="public",
            AccessControlPolicy={"Grants": [{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                             "Permission": "EVERYTHING"}],
                                 "Owner": {"ID": OWNER}}) == "MalformedACLError"
assert code(owner.put_bucket_acl, Bucket="public", ACL="wide-open") == "InvalidArgument"
assert code(alt.put_bucket_acl, Bucket="public", ACL="public-read-write") == "AccessDenied"
assert owner.get_bucket_acl(Bucket="public")["Grants"] == before

# --- Bucket policies: allow alt to read a prefix, deny everyone a key; explicit deny wins,
# even for the owner. Bad policies are refused and change nothing.
owner.create_bucket(Bucket="policed")
for k in ("shared/a", "shared/secret", "other"):
    owner.put_object(Bucket="policed", Key=k, Body=k.encode())
policy = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": [ALT]}, "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::policed/shared/*"},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::policed/shared/secret"},
]}
owner.put_bucket_policy(Bucket="policed", Policy=json.dumps(policy))
assert alt.get_object(Bucket="policed", Key="shared/a")["Body"].read() == b"shared/a"
assert code(alt.get_object, Bucket="policed", Key="other") == "AccessDenied"
assert code(alt.get_object, Bucket="policed", Key="shared/secret") == "AccessDenied"
assert code(owner.get_object, Bucket="policed", Key="shared/secret") == "AccessDenied"
assert code(alt.put_object, Bucket="policed", Key="shared/b", Body=b"x") == "AccessDenied"
assert anon("GET", "/policed/shared/a").status_code == 403
assert json.loads(owner.get_bucket_policy(Bucket="policed")["Policy"]) == policy
assert owner.get_bucket_policy_status(Bucket="policed")["PolicyStatus"]["IsPublic"] is False
for bad in ("{not json", json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                     "Resource": "arn:aws:s3:::another-bucket/*"}]}),
            json.dumps({"Statement": [{"Effect": "Perhaps", "Principal": "*", "Action": "s3:GetObject",
                                       "Resource": "arn:aws:s3:::policed/*"}]})):
    assert code(owner.put_bucket_policy, Bucket="policed", Policy=bad) == "MalformedPolicy"
assert json.loads(owner.get_bucket_policy(Bucket="policed")["Policy"]) == policy
assert code(alt.delete_bucket_policy, Bucket="policed") == "AccessDenied"
# A public policy (anyone may read) opens the bucket to unsigned GETs, and only to GETs.
public = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policed/*"}]}
owner.put_bucket_policy(Bucket="policed", Policy=json.dumps(public))
assert owner.get_bucket_policy_status(Bucket="policed")["PolicyStatus"]["IsPublic"] is True
assert anon("GET", "/policed/other").content == b"other"
assert anon("PUT", "/policed/other", data=b"x").status_code == 403
assert anon("GET", "/policed").status_code == 403
assert owner.get_object(Bucket="policed", Key="other")["Body"].read() == b"other"

# --- Public access block: refuses public ACLs and policies, and RestrictPublicBuckets shuts
# the public policy out.
owner.put_public_access_block(Bucket="policed", PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True})
assert anon("GET", "/policed/other").status_code == 403
assert code(owner.put_bucket_acl, Bucket="policed", ACL="public-read") == "AccessDenied"
assert code(owner.put_object, Bucket="policed", Key="pub", Body=b"x", ACL="public-read") == "AccessDenied"
assert "Contents" not in owner.list_objects_v2(Bucket="policed", Prefix="pub")
assert code(owner.put_bucket_policy, Bucket="policed", Policy=json.dumps(public)) == "AccessDenied"
owner.delete_public_access_block(Bucket="policed")
assert code(owner.get_public_access_block, Bucket="policed") == "NoSuchPublicAccessBlockConfiguration"
assert anon("GET", "/policed/other").content == b"other"
owner.delete_bucket_policy(Bucket="policed")
assert code(owner.get_bucket_policy, Bucket="policed") == "NoSuchBucketPolicy"
assert anon("GET", "/policed/other").status_code == 403

# --- CORS: preflights answered from the rules, headers on the actual answers, 403 for an
# origin no rule allows; a bad configuration is refused and changes nothing.
rules = [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"],
          "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]
owner.put_bucket_cors(Bucket="public", CORSConfiguration={"CORSRules": rules})
pre = anon("OPTIONS", "/public/open", headers={"Origin": "https://app.example",
                                               "Access-Control-Request-Method": "PUT",
                                               "Access-Control-Request-Headers": "content-type, x-amz-date"})
assert pre.status_code == 200, (pre.status_code, pre.text)
assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
assert pre.headers["Access-Control-Max-Age"] == "600"
assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
assert anon("OPTIONS", "/public/open", headers={"Origin": "https://evil.example",
                                                "Access-Control-Request-Method": "GET"}).status_code == 403
assert anon("OPTIONS", "/public/open", headers={"Origin": "https://app.example",
                                                "Access-Control-Request-Method": "DELETE"}).status_code == 403
assert anon("OPTIONS", "/public/open").status_code == 400
got = anon("GET", "/public/open", headers={"Origin": "https://app.example"})
assert got.content == b"hello" and got.headers["Access-Control-Allow-Origin"] == "https://app.example"
assert got.headers["Access-Control-Expose-Headers"] == "ETag"
assert "Access-Control-Allow-Origin" not in anon("GET", "/public/open", headers={"Origin": "https://evil.example"}).headers
assert code(owner.put_bucket_cors, Bucket="public",
            CORSConfiguration={"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}) == "InvalidRequest"
assert owner.get_bucket_cors(Bucket="public")["CORSRules"][0]["AllowedOrigins"] == ["https://app.example"]
owner.delete_bucket_cors(Bucket="public")
assert code(owner.get_bucket_cors, Bucket="public") == "NoSuchCORSConfiguration"

# --- Browser form uploads: a presigned POST stores the file; a form past its policy's size
# range or without a valid signature stores nothing.
post = owner.generate_presigned_post("private", "uploads/photo.txt",
                                     Conditions=[["content-length-range", 1, 1000],
                                                 ["starts-with", "$key", "uploads/"]],
                                     ExpiresIn=600)
r = requests.post(post["url"], data=post["fields"], files={"file": ("photo.txt", b"form bytes")})
assert r.status_code == 204, (r.status_code, r.text)
assert owner.get_object(Bucket="private", Key="uploads/photo.txt")["Body"].read() == b"form bytes"
r = requests.post(post["url"], data=post["fields"], files={"file": ("big.txt", b"x" * 2000)})
assert r.status_code == 400, (r.status_code, r.text)
forged = dict(post["fields"], key="uploads/forged.txt")
forged["policy"] = forged["policy"][:-4] + "AAAA"
r = requests.post(post["url"], data=forged, files={"file": ("f.txt", b"forged")})
assert r.status_code == 403, (r.status_code, r.text)
names = [o["Key"] for o in owner.list_objects_v2(Bucket="private", Prefix="uploads/")["Contents"]]
assert names == ["uploads/photo.txt"], names
# `${filename}` in a form's key is the uploaded file's name (boto3 writes such a presigned POST
# for a name the browser picks, with a `starts-with` condition on what comes before it); the
# file's own bytes keep theirs.
post = owner.generate_presigned_post("private", "picked/${filename}", ExpiresIn=600)
body = b"a file that says ${filename}"
r = requests.post(post["url"], data=post["fields"], files={"file": ("holiday.jpg", body)})
assert r.status_code == 204, (r.status_code, r.text)
assert owner.get_object(Bucket="private", Key="picked/holiday.jpg")["Body"].read() == body
names = [o["Key"] for o in owner.list_objects_v2(Bucket="private", Prefix="picked/")["Contents"]]
assert names == ["picked/holiday.jpg"], names
# The policy's conditions see the name the object gets: a name the condition does not allow
# is refused and stores nothing.
post = owner.generate_presigned_post("private", "${filename}",
                                     Conditions=[["starts-with", "$key", "report"]], ExpiresIn=600)
r = requests.post(post["url"], data=post["fields"], files={"file": ("report-12.txt", b"ok")})
assert r.status_code == 204, (r.status_code, r.text)
assert owner.get_object(Bucket="private", Key="report-12.txt")["Body"].read() == b"ok"
r = requests.post(post["url"], data=post["fields"], files={"file": ("notes.txt", b"no")})
assert r.status_code == 403, (r.status_code, r.text)
for key in ["notes.txt", "${filename}"]:
    assert code(owner.head_object, Bucket="private", Key=key) in ("404", "NoSuchKey"), key
# A form's x-amz-tagging field (a Tagging document, or k=v pairs as the header takes) tags the
# object; a malformed one stores nothing.
tagging = ("<Tagging><TagSet><Tag><Key>from</Key><Value>form upload</Value></Tag>"
           "<Tag><Key>n</Key><Value>2</Value></Tag></TagSet></Tagging>")
post = owner.generate_presigned_post("private", "tagged/form.txt", Fields={"x-amz-tagging": tagging},
                                     Conditions=[{"x-amz-tagging": tagging}], ExpiresIn=600)
r = requests.post(post["url"], data=post["fields"], files={"file": ("t.txt", b"tagged")})
assert r.status_code == 204, (r.status_code, r.text)
tags = owner.get_object_tagging(Bucket="private", Key="tagged/form.txt")["TagSet"]
assert sorted((t["Key"], t["Value"]) for t in tags) == [("from", "form upload"), ("n", "2")], tags
bad = "<Tagging><TagSet><Tag><Key>x</Key>"
post = owner.generate_presigned_post("private", "tagged/bad.txt", Fields={"x-amz-tagging": bad},
                                     Conditions=[{"x-amz-tagging": bad}], ExpiresIn=600)
r = requests.post(post["url"], data=post["fields"], files={"file": ("b.txt", b"bad")})
assert r.status_code == 400, (r.status_code, r.text)
assert code(owner.head_object, Bucket="private", Key="tagged/bad.txt") in ("404", "NoSuchKey")
# S3's own name for the form's tags, `tagging`: the same, and a large file after it streams
# through whole.
big = bytes(range(256)) * 8192
post = owner.generate_presigned_post("private", "tagged/s3name.bin", Fields={"tagging": tagging},
                                     Conditions=[{"tagging": tagging}, ["content-length-range", 0, 4 << 20]],
                                     ExpiresIn=600)
r = requests.post(post["url"], data=post["fields"], files={"file": ("s.bin", big)})
assert r.status_code == 204, (r.status_code, r.text)
assert owner.get_object(Bucket="private", Key="tagged/s3name.bin")["Body"].read() == big
tags = owner.get_object_tagging(Bucket="private", Key="tagged/s3name.bin")["TagSet"]
assert sorted((t["Key"], t["Value"]) for t in tags) == [("from", "form upload"), ("n", "2")], tags
post = owner.generate_presigned_post("private", "tagged/bad2.txt", Fields={"tagging": bad},
                                     Conditions=[{"tagging": bad}], ExpiresIn=600)
r = requests.post(post["url"], data=post["fields"], files={"file": ("b.txt", b"bad")})
assert r.status_code == 400, (r.status_code, r.text)
assert code(owner.head_object, Bucket="private", Key="tagged/bad2.txt") in ("404", "NoSuchKey")
# A `tagging` field the policy does not name is refused like any unlisted field.
post = owner.generate_presigned_post("private", "tagged/unlisted.txt", ExpiresIn=600)
r = requests.post(post["url"], data=dict(post["fields"], tagging=tagging), files={"file": ("u.txt", b"u")})
assert r.status_code == 403, (r.status_code, r.text)
assert code(owner.head_object, Bucket="private", Key="tagged/unlisted.txt") in ("404", "NoSuchKey")

# --- Ownership controls: BucketOwnerEnforced switches ACLs off.
owner.create_bucket(Bucket="enforced", ObjectOwnership="BucketOwnerEnforced")
assert owner.get_bucket_ownership_controls(Bucket="enforced")["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
assert code(owner.put_object, Bucket="enforced", Key="k", Body=b"x", ACL="public-read") == "AccessControlListNotSupported"
assert code(owner.put_bucket_acl, Bucket="enforced", ACL="public-read") == "AccessControlListNotSupported"
print("ALL OK")
