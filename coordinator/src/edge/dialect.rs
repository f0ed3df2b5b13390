//! Where S3 as clients speak it differs from what `s3s` 0.14 reads or writes, the request or
//! the answer is adjusted here, around `s3s`, and nowhere else:
//!
//! - A SigV4 request dated by `Date` alone (botocore signs that way when a caller sets `Date`)
//!   is given the `x-amz-date` `s3s` looks for, with the same instant; `Date` stays what
//!   was signed.
//! - A presigned URL whose `X-Amz-Expires` is not 1..=604800 seconds is refused with 403
//!   before anything else (`s3s` accepts any length and answers 400 to a negative one).
//! - A form upload refused by its policy's conditions is 403 AccessDenied, as S3 answers
//!   (`s3s` says 400 InvalidPolicyDocument, which is S3's code for a policy it cannot read).
//! - `GetObjectAttributes` answers the ETag unquoted, as S3 documents it (`s3s` quotes every
//!   XML ETag).
//! - SigV2 (`Authorization: AWS key:signature`): the request's date (`x-amz-date`, else
//!   `Date`) must be within 15 minutes of the coordinator's clock, as S3 requires, else 403
//!   RequestTimeTooSkewed (403 AccessDenied when there is no readable date); `s3s` checks no
//!   date, so a captured request could be replayed forever. A path-style request for a bare
//!   bucket (`/bucket`) is read as `/bucket/`, the resource SigV2 clients sign for a bucket.

use crate::edge::error::error_document;
use crate::edge::host::virtual_host_bucket;
use crate::error::ApiError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// The longest a presigned URL may be valid, as S3: a week.
const MAX_EXPIRES_SECS: i64 = 604_800;

/// How far a SigV2 request's date may be from the clock, as S3: 15 minutes.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The S3 service `inner`, with the adjustments of the module docs.
#[derive(Clone)]
pub struct Dialect<S> {
    inner: S,
    domain: Option<String>,
}

impl<S> Dialect<S> {
    /// Wraps `inner`; `domain` is the coordinator's `--domain` (virtual-hosted buckets).
    pub fn new(inner: S, domain: Option<String>) -> Self {
        Dialect { inner, domain }
    }
}

/// What an answer needs once `s3s` has given it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    AsIs,
    UnquoteETag,
    PostPolicyRefusal,
}

fn query_has(req: &http::Request<Incoming>, name: &str) -> bool {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|p| p.split('=').next() == Some(name))
}

fn answer_of(req: &http::Request<Incoming>) -> Answer {
    let form = crate::edge::form_fields::boundary(req).is_some();
    match *req.method() {
        Method::GET if query_has(req, "attributes") => Answer::UnquoteETag,
        Method::POST if form => Answer::PostPolicyRefusal,
        _ => Answer::AsIs,
    }
}

/// The refusal of a presigned URL whose validity is out of range, if it is.
fn expires_refusal(req: &http::Request<Incoming>) -> Option<ApiError> {
    let query = req.uri().query()?;
    let value = query
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Expires="))?;
    match value.parse::<i64>() {
        Ok(secs) if (1..=MAX_EXPIRES_SECS).contains(&secs) => None,
        _ => Some(ApiError::AccessDenied(format!(
            "X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_SECS} (a week), not {value:?}"
        ))),
    }
}

/// Parses an HTTP date as clients write it: RFC 1123 (`GMT`), or RFC 2822 with `-0000`
/// or `+0000` for UTC (botocore's). The weekday is not checked (clients get it wrong).
fn http_date(v: &str) -> Option<SystemTime> {
    if let Ok(t) = httpdate::parse_http_date(v) {
        return Some(t);
    }
    let rest = v.split_once(", ").map_or(v, |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, hms, "GMT" | "-0000" | "+0000" | "UTC"] = f[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    // Nothing was signed before the epoch.
    let year: i32 = year.parse().ok().filter(|y| *y >= 1970)?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day.parse().ok()?)
            .ok()?;
    let mut t = hms.split(':').map(|p| p.parse::<u8>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(sec)), None) =
        (t.next(), t.next(), t.next(), t.next())
    else {
        return None;
    };
    let at = date.with_hms(h, m, sec).ok()?.assume_utc();
    Some(SystemTime::from(at))
}

/// Whether `h` carries SigV2 header authentication.
fn sigv2_header(h: &HeaderMap) -> bool {
    h.get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS "))
}

/// The refusal of a SigV2 request whose date is missing, unreadable or too far off.
fn sigv2_date_refusal(h: &HeaderMap, now: SystemTime) -> Option<ApiError> {
    if !sigv2_header(h) {
        return None;
    }
    let date = h.get("x-amz-date").or_else(|| h.get(http::header::DATE));
    let Some(when) = date.and_then(|v| v.to_str().ok()).and_then(http_date) else {
        return Some(ApiError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".into(),
        ));
    };
    let skew = now
        .duration_since(when)
        .or_else(|_| when.duration_since(now))
        .unwrap_or_default();
    (skew > MAX_SKEW).then(|| {
        ApiError::RequestTimeTooSkewed(format!(
            "the request's date is {}s from the server's clock; at most {}s is allowed",
            skew.as_secs(),
            MAX_SKEW.as_secs()
        ))
    })
}

/// A SigV2 request (header or presigned) for a bare path-style bucket, `/bucket`, is read
/// as `/bucket/`, the resource SigV2 clients sign for a bucket.
fn sigv2_bucket_slash(req: &mut http::Request<Incoming>, domain: Option<&str>) {
    let presigned = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("AWSAccessKeyId=")));
    if !(sigv2_header(req.headers()) || presigned)
        || virtual_host_bucket(req.headers(), domain).is_some()
    {
        return;
    }
    let path = req.uri().path();
    if path.len() < 2 || path[1..].contains('/') {
        return;
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = pq.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Gives a SigV4 request dated only by `Date` the same instant as `x-amz-date`.
fn date_as_amz_date(h: &mut HeaderMap) {
    let sigv4 = h
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256"));
    if !sigv4 || h.contains_key("x-amz-date") {
        return;
    }
    let Some(date) = h
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(http_date)
    else {
        return;
    };
    let t = time::OffsetDateTime::from(date);
    let amz = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if let Ok(v) = HeaderValue::from_str(&amz) {
        h.insert("x-amz-date", v);
    }
}

/// `<ETag>"…"</ETag>` becomes `<ETag>…</ETag>`.
fn unquote_etag(xml: &str) -> String {
    xml.replace("<ETag>&quot;", "<ETag>")
        .replace("&quot;</ETag>", "</ETag>")
        .replace("<ETag>\"", "<ETag>")
        .replace("\"</ETag>", "</ETag>")
}

/// A form upload's policy-condition refusal as S3 answers it, if `xml` is one.
fn post_policy_refusal(xml: &str) -> Option<(StatusCode, String)> {
    if !xml.contains("<Code>InvalidPolicyDocument</Code>") {
        return None;
    }
    let condition = ["Policy condition", "does not match bucket in URL"]
        .iter()
        .any(|m| xml.contains(m));
    condition.then(|| {
        let start = xml.find("<Message>").map_or(0, |i| i + "<Message>".len());
        let end = xml.find("</Message>").unwrap_or(start).max(start);
        let message = xml[start..end]
            .replace("&apos;", "'")
            .replace("&quot;", "\"");
        error_document(ApiError::AccessDenied(format!(
            "Invalid according to Policy: {message}"
        )))
    })
}

impl<S, B> hyper::service::Service<http::Request<Incoming>> for Dialect<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + From<String> + Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let refusal =
            expires_refusal(&req).or_else(|| sigv2_date_refusal(req.headers(), SystemTime::now()));
        if let Some(e) = refusal {
            let (status, xml) = error_document(e);
            return Box::pin(async move {
                let mut resp = http::Response::new(B::from(xml));
                *resp.status_mut() = status;
                Ok(resp)
            });
        }
        date_as_amz_date(req.headers_mut());
        sigv2_bucket_slash(&mut req, self.domain.as_deref());
        let answer = answer_of(&req);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let rewrite = match answer {
                Answer::AsIs => false,
                Answer::UnquoteETag => resp.status() == StatusCode::OK,
                Answer::PostPolicyRefusal => resp.status() == StatusCode::BAD_REQUEST,
            };
            if !rewrite {
                return Ok(resp);
            }
            let (mut parts, body) = resp.into_parts();
            // These answers are small XML documents made in memory.
            let xml = match body.collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            let xml = match answer {
                Answer::UnquoteETag => unquote_etag(&xml),
                _ => match post_policy_refusal(&xml) {
                    Some((status, refusal)) => {
                        parts.status = status;
                        refusal
                    }
                    None => xml,
                },
            };
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Ok(http::Response::from_parts(parts, B::from(xml)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv2_dates_must_be_near_the_clock() {
        let now = SystemTime::now();
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("AWS k:s"),
        );
        let at = |t: SystemTime| HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap();
        h.insert(http::header::DATE, at(now - Duration::from_secs(60)));
        assert!(sigv2_date_refusal(&h, now).is_none());
        h.insert("x-amz-date", at(now + Duration::from_secs(3600)));
        assert!(matches!(
            sigv2_date_refusal(&h, now),
            Some(ApiError::RequestTimeTooSkewed(_))
        ));
        h.insert("x-amz-date", HeaderValue::from_static("Bad Date"));
        assert!(matches!(
            sigv2_date_refusal(&h, now),
            Some(ApiError::AccessDenied(_))
        ));
        h.remove("x-amz-date");
        h.remove(http::header::DATE);
        assert!(matches!(
            sigv2_date_refusal(&h, now),
            Some(ApiError::AccessDenied(_))
        ));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
        );
        assert!(sigv2_date_refusal(&h, now).is_none());
        assert_eq!(
            http_date("Sat, 05 Dec 2026 02:16:05 -0000"),
            http_date("Sat, 05 Dec 2026 02:16:05 GMT")
        );
        // A wrong weekday is tolerated; a date before 1970 is not one.
        assert_eq!(
            http_date("Tue, 07 Jul 2010 21:53:04 GMT"),
            http_date("Wed, 07 Jul 2010 21:53:04 GMT")
        );
        assert!(http_date("Bad Date").is_none());
        assert!(http_date("Tue, 07 Jul 1950 21:53:04 GMT").is_none());
    }

    #[test]
    fn etags_lose_their_quotes_and_nothing_else_changes() {
        let xml = "<R><ETag>&quot;abc-2&quot;</ETag><Size>\"3\"</Size></R>";
        assert_eq!(
            unquote_etag(xml),
            "<R><ETag>abc-2</ETag><Size>\"3\"</Size></R>"
        );
    }

    #[test]
    fn only_condition_failures_become_access_denied() {
        let cond = "<Error><Code>InvalidPolicyDocument</Code><Message>Policy condition &apos;eq&apos; failed</Message></Error>";
        let (status, xml) = post_policy_refusal(cond).unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
        assert!(xml.contains("Policy condition 'eq' failed"), "{xml}");
        let unreadable =
            "<Error><Code>InvalidPolicyDocument</Code><Message>failed to parse</Message></Error>";
        assert!(post_policy_refusal(unreadable).is_none());
    }
}
