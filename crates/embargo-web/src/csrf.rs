//! Cross-site request forgery protection for every state-changing request.
//!
//! A `POST` (any method but `GET`, `HEAD` and `OPTIONS`) is refused with 403 when the
//! browser shows it came from another origin. The origin is compared with the origin of
//! `public_url` (scheme, host and port, default ports made explicit), never with the `Host`
//! header alone, so an `http://` page cannot post to the `https://` site:
//!
//! 1. `Sec-Fetch-Site` (set by the browser, not by page script): `same-origin` and `none`
//!    (typed by the person) pass on to the next check; any other value is refused.
//! 2. `Origin`, when sent and not `null`: must be `public_url`'s origin.
//! 3. Without `Sec-Fetch-Site` and without a usable `Origin` (older browsers, plain HTTP on a
//!    non-local host, or `Origin: null` because our pages send `Referrer-Policy:
//!    no-referrer`): a `Referer`, when sent, must be on `public_url`'s origin.
//! 4. A request with none of these headers is not from a browser that could be tricked
//!    (`curl`, the API's clients) and passes; the session cookie is `SameSite=Strict` too.
//!
//! Same-origin forms keep working without JavaScript: Chromium sends `Sec-Fetch-Site:
//! same-origin` (and `Origin: null` under our referrer policy).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use embargo_app::App;

use crate::render::{self, Layout};

/// An origin: scheme, host and port (the default port of the scheme when none is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)` URL, or `None`.
    pub fn of_url(url: &str) -> Option<Origin> {
        let uri: Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = uri.authority()?;
        // User information in an origin or a referrer is not something a browser sends.
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(Origin { scheme, host, port: authority.port_u16().unwrap_or(default_port) })
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Sec-Fetch-Site` says another site sent it.
    CrossSite,
    /// `Origin` names another origin (or is not an origin).
    OriginMismatch,
    /// No `Origin`, and `Referer` names another origin.
    RefererMismatch,
}

/// The decision for one request, given the expected origin.
pub fn check(expected: Option<&Origin>, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").trim());
    let fetch_site = header("sec-fetch-site").filter(|v| !v.is_empty());
    if let Some(site) = fetch_site
        && site != "same-origin"
        && site != "none"
    {
        return Err(Refusal::CrossSite);
    }
    let matches = |url: &str| Origin::of_url(url).is_some_and(|o| expected.is_some_and(|e| *e == o));
    match header("origin").filter(|v| !v.is_empty() && *v != "null") {
        Some(origin) if matches(origin) => return Ok(()),
        Some(_) => return Err(Refusal::OriginMismatch),
        None => {}
    }
    if fetch_site.is_none()
        && let Some(referer) = header("referer").filter(|v| !v.is_empty())
        && !matches(referer)
    {
        return Err(Refusal::RefererMismatch);
    }
    Ok(())
}

/// The middleware: refuses cross-origin state changes with a 403 page.
pub(crate) async fn protect(State(app): State<App>, request: Request, next: Next) -> Response {
    let expected = Origin::of_url(&app.config.base_url());
    match check(expected.as_ref(), request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            metrics::counter!("embargo_csrf_refused_total").increment(1);
            tracing::warn!(reason = ?refusal, "cross-origin request refused");
            render::message(
                StatusCode::FORBIDDEN,
                Layout::public(&app, "Request refused", ""),
                "Request refused",
                "This form was sent from another site, or from an address other than this site's public address. \
                 Open the page on this site and send it again.",
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let site = Origin::of_url("https://Security.Example.org/").unwrap();
        assert_eq!(Origin::of_url("https://security.example.org:443"), Some(site.clone()));
        assert_ne!(Origin::of_url("http://security.example.org"), Some(site.clone()));
        assert_ne!(Origin::of_url("https://security.example.org:8443"), Some(site.clone()));
        assert_ne!(Origin::of_url("https://security.example.org.evil.test"), Some(site));
        assert_eq!(Origin::of_url("https://user@security.example.org"), None);
        assert_eq!(Origin::of_url("ftp://security.example.org"), None);
        assert_eq!(Origin::of_url("null"), None);
    }

    #[test]
    fn the_rules() {
        let site = Origin::of_url("https://security.example.org").unwrap();
        let post = Method::POST;
        let ok = |h: &[(&'static str, &'static str)]| check(Some(&site), &post, &headers(h));
        assert_eq!(check(Some(&site), &Method::GET, &headers(&[("sec-fetch-site", "cross-site")])), Ok(()));
        assert_eq!(ok(&[]), Ok(()), "not a browser");
        assert_eq!(ok(&[("sec-fetch-site", "same-origin"), ("origin", "null")]), Ok(()), "Chromium, no-referrer");
        assert_eq!(ok(&[("sec-fetch-site", "cross-site")]), Err(Refusal::CrossSite));
        assert_eq!(ok(&[("sec-fetch-site", "same-site")]), Err(Refusal::CrossSite));
        assert_eq!(ok(&[("origin", "https://security.example.org")]), Ok(()));
        assert_eq!(ok(&[("origin", "http://security.example.org")]), Err(Refusal::OriginMismatch));
        assert_eq!(ok(&[("origin", "https://evil.example")]), Err(Refusal::OriginMismatch));
        assert_eq!(
            ok(&[("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")]),
            Err(Refusal::OriginMismatch)
        );
        assert_eq!(ok(&[("referer", "https://evil.example/form")]), Err(Refusal::RefererMismatch));
        assert_eq!(ok(&[("origin", "null"), ("referer", "https://evil.example/")]), Err(Refusal::RefererMismatch));
        assert_eq!(ok(&[("referer", "http://security.example.org/inbox")]), Err(Refusal::RefererMismatch));
        assert_eq!(ok(&[("referer", "https://security.example.org/reports/X")]), Ok(()));
        assert_eq!(ok(&[("referer", "not a url")]), Err(Refusal::RefererMismatch));
    }
}
