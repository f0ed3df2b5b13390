"""A real browser against the store: headless Chromium loads a page from another origin that
uploads a file with a presigned POST form, downloads it with a presigned GET and writes one
with a presigned PUT (which needs a CORS preflight). The bucket's CORS rules allow the first
origin; a page from a second origin, not in the rules, can read nothing back and its PUT is
refused at the preflight, so nothing of it is stored.
Environment: ENDPOINT, KEY, SECRET."""

import functools
import http.server
import json
import os
import re
import subprocess
import tempfile
import threading

import boto3
from botocore.exceptions import ClientError

E = os.environ["ENDPOINT"]
s3 = boto3.client("s3", endpoint_url=E, aws_access_key_id=os.environ["KEY"],
                  aws_secret_access_key=os.environ["SECRET"], region_name="us-east-1")
site = tempfile.mkdtemp()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve():
    handler = functools.partial(Quiet, directory=site)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % srv.server_address[1]


allowed, other = serve(), serve()
s3.create_bucket(Bucket="web")
s3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": [{
    "AllowedOrigins": [allowed], "AllowedMethods": ["GET", "PUT", "POST"],
    "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})

PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
const out = document.getElementById('out');
const say = (s) => { out.textContent += ' | ' + s; };
(async () => {
  try {
    const fd = new FormData();
    for (const [k, v] of Object.entries(%(fields)s)) fd.append(k, v);
    fd.append('file', new Blob(['%(body)s'], {type: 'text/plain'}), 'upload.txt');
    const p = await fetch(%(post)s, {method: 'POST', body: fd});
    say('post ' + p.status);
  } catch (e) { say('post blocked'); }
  try {
    const g = await fetch(%(get)s);
    say('get ' + g.status + ' ' + (await g.text()));
  } catch (e) { say('get blocked'); }
  try {
    const u = await fetch(%(put)s, {method: 'PUT', body: 'put %(body)s', headers: {'Content-Type': 'text/plain'}});
    say('put ' + u.status + ' etag ' + (u.headers.get('ETag') ? 'seen' : 'hidden'));
  } catch (e) { say('put blocked'); }
  say('done');
})();
</script></body></html>"""


def page(name, tag):
    post = s3.generate_presigned_post("web", "form-%s.txt" % tag,
                                      Conditions=[["content-length-range", 1, 10000]], ExpiresIn=600)
    get = s3.generate_presigned_url("get_object", Params={"Bucket": "web", "Key": "form-%s.txt" % tag},
                                    ExpiresIn=600)
    put = s3.generate_presigned_url("put_object", Params={"Bucket": "web", "Key": "put-%s.txt" % tag,
                                                          "ContentType": "text/plain"}, ExpiresIn=600)
    with open(os.path.join(site, name), "w") as f:
        f.write(PAGE % {"fields": json.dumps(post["fields"]), "post": json.dumps(post["url"]),
                        "get": json.dumps(get), "put": json.dumps(put), "body": "hello from " + tag})


def browse(url):
    profile = tempfile.mkdtemp()
    out = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="out">(.*?)</pre>', out.stdout, re.S)
    assert m, "no result in the page: %s %s" % (out.stdout[-500:], out.stderr[-500:])
    return m.group(1)


page("a.html", "a")
page("b.html", "b")
seen = browse(allowed + "/a.html")
print("allowed origin:", seen)
assert "post 204" in seen and "get 200 hello from a" in seen and "put 200 etag seen" in seen, seen
assert s3.get_object(Bucket="web", Key="put-a.txt")["Body"].read() == b"put hello from a"

seen = browse(other + "/b.html")
print("other origin:", seen)
assert "done" in seen, seen
# The form itself is a simple request (no preflight), so it is sent and stored, as on S3;
# the page may not read the answer, nor the object, and the PUT stops at the preflight.
assert "post blocked" in seen and "get blocked" in seen and "put blocked" in seen, seen
try:
    s3.head_object(Bucket="web", Key="put-b.txt")
    raise AssertionError("the refused PUT stored an object")
except ClientError as e:
    assert e.response["Error"]["Code"] in ("404", "NoSuchKey"), e.response
print("ALL OK")
