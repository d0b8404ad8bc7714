//! An OpenID Connect relying party (ADR 29): discovery from the issuer's
//! `/.well-known/openid-configuration`, its JWKS (fetched again when a token names a key we
//! do not hold, so a key rotation needs no restart), the authorization code flow with PKCE
//! (S256), `state` and `nonce`, and the ID token's validation: signature with an asymmetric
//! algorithm, `iss`, `aud` (no other audience), `azp`, `exp` and `iat` with a small leeway,
//! and `nonce`.
//!
//! Built on the `openidconnect` crate (no HTTP client of its own: requests go through the
//! workspace's reqwest with rustls). It knows nothing of accounts, sessions or the
//! database: the caller keeps `state`, `nonce` and the PKCE verifier between
//! [`Provider::begin`] and [`Provider::finish`], and decides what a verified [`Identity`]
//! may do. Time is an argument. The client secret never prints; redirects are never
//! followed; plain `http://` is accepted only for a loopback issuer.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};

/// How far the IdP's clock may be from ours when checking `exp` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;
/// An ID token issued longer ago than this is refused (it comes straight from the token
/// endpoint, so it is seconds old).
pub const MAX_AGE_SECONDS: i64 = 600;
/// The JWKS is fetched again for an unknown key at most this often.
const JWKS_REFRESH_SECONDS: u64 = 1;
/// The largest answer read from the IdP.
const MAX_BODY: usize = 1 << 20;

/// What the relying party needs to know.
#[derive(Clone)]
pub struct Settings {
    /// The issuer identifier, exactly as the IdP writes it in `iss` (an `https://` URL, or
    /// `http://` on loopback).
    pub issuer: String,
    /// The client ID registered at the IdP.
    pub client_id: String,
    /// The client secret (`client_secret_basic`).
    pub client_secret: SecretString,
    /// Where the IdP sends the browser back (`<public_url>/login/oidc/callback`).
    pub redirect_uri: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// Time limit of one request to the IdP.
    pub timeout: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The IdP could not be reached or answered with a server error: try again later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The IdP refused (such as a code used twice or expired: `invalid_grant`).
    #[error("the identity provider refused: {0}")]
    Refused(String),
    /// What came back is not acceptable (a bad signature, another issuer or audience, an
    /// expired token, a wrong nonce, a discovery document for another issuer).
    #[error("the identity provider's answer is not acceptable: {0}")]
    Invalid(String),
    /// The settings cannot work (such as a plain-HTTP issuer that is not loopback).
    #[error("OpenID Connect settings: {0}")]
    Config(String),
}

/// The HTTP client's error, for `openidconnect`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// A verified sign-in at the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `iss`.
    pub issuer: String,
    /// `sub`: stable at this issuer; what accounts are linked by.
    pub subject: String,
    /// `email`, if the IdP sent it (shown, never used to find an account).
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: Option<bool>,
    /// `amr`: how the person authenticated at the IdP (RFC 8176 values such as `pwd`,
    /// `otp`, `hwk`, `mfa`).
    pub amr: Vec<String>,
    /// `acr`.
    pub acr: Option<String>,
}

/// A started sign-in: send the browser to `url`; keep `state` (to match the callback),
/// `nonce` and `pkce_verifier` (to finish) until the callback, and use them once.
#[derive(Debug, Clone)]
pub struct Request {
    /// The IdP's authorization URL with every parameter.
    pub url: String,
    /// The `state` parameter.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (the URL carries its S256 challenge).
    pub pkce_verifier: String,
}

/// Whether a URL may be used: `https://`, or `http://` to a loopback host.
pub fn acceptable_url(url: &str) -> bool {
    let Ok(parsed) = openidconnect::url::Url::parse(url) else { return false };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => {
            matches!(parsed.host(), Some(openidconnect::url::Host::Domain("localhost")))
                || matches!(parsed.host(), Some(openidconnect::url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(parsed.host(), Some(openidconnect::url::Host::Ipv6(ip)) if ip.is_loopback())
        }
        _ => false,
    }
}

/// The asymmetric signature algorithms accepted (never `none`, never a MAC keyed by the
/// client secret).
fn allowed_algs() -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    vec![
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ]
}

struct Keys {
    set: CoreJsonWebKeySet,
    /// When the keys were last fetched again for an unknown key (not at discovery).
    refetched: Option<std::time::Instant>,
}

/// A discovered IdP.
pub struct Provider {
    settings: Settings,
    metadata: CoreProviderMetadata,
    keys: tokio::sync::Mutex<Keys>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("Embargo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}

/// One request for `openidconnect`, through reqwest: only to acceptable URLs, answers cut
/// at [`MAX_BODY`].
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    if !acceptable_url(&request.uri().to_string()) {
        return Err(HttpError(format!("refusing to call {} (https only, or http to loopback)", request.uri())));
    }
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError(format!("request: {e}")))?;
    let mut response = client.execute(request).await.map_err(|e| HttpError(e.without_url().to_string()))?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| HttpError(e.without_url().to_string()))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|e| HttpError(format!("response: {e}")))
}

fn random_token() -> String {
    // 32 random bytes, base64url (openidconnect's own generator).
    CsrfToken::new_random_len(32).secret().clone()
}

impl Provider {
    /// Reads the IdP's discovery document and its JWKS. The document must name exactly
    /// `settings.issuer` as its issuer.
    pub async fn discover(settings: Settings) -> Result<Provider, Error> {
        if !acceptable_url(&settings.issuer) {
            return Err(Error::Config(format!(
                "the issuer {:?} must be an https:// URL (http:// only on loopback)",
                settings.issuer
            )));
        }
        if !acceptable_url(&settings.redirect_uri) {
            return Err(Error::Config(format!(
                "the redirect URI {:?} must be an https:// URL (http:// only on loopback)",
                settings.redirect_uri
            )));
        }
        let http = http_client(settings.timeout)?;
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| Error::Config(format!("issuer: {e}")))?;
        let caller = |request| send(http.clone(), request);
        let metadata = CoreProviderMetadata::discover_async(issuer, &caller).await.map_err(discovery_error)?;
        for url in [metadata.authorization_endpoint().as_str(), metadata.jwks_uri().as_str()]
            .into_iter()
            .chain(metadata.token_endpoint().map(|u| u.as_str()))
        {
            if !acceptable_url(url) {
                return Err(Error::Invalid(format!("the discovery document names {url:?} (https only)")));
            }
        }
        if metadata.token_endpoint().is_none() {
            return Err(Error::Invalid("the discovery document names no token endpoint".into()));
        }
        let set = metadata.jwks().clone();
        Ok(Provider { settings, metadata, keys: tokio::sync::Mutex::new(Keys { set, refetched: None }), http })
    }

    /// The settings this provider was discovered with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn client(
        &self,
        keys: CoreJsonWebKeySet,
    ) -> Result<
        openidconnect::core::CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        Error,
    > {
        let metadata = self.metadata.clone().set_jwks(keys);
        let redirect = RedirectUrl::new(self.settings.redirect_uri.clone())
            .map_err(|e| Error::Config(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: the authorization URL (code flow, `openid` and the configured
    /// scopes, PKCE S256, a fresh `state` and `nonce`).
    pub async fn begin(&self) -> Result<Request, Error> {
        let keys = self.keys.lock().await.set.clone();
        let client = self.client(keys)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256_len(48);
        let state = random_token();
        let nonce = random_token();
        let (state_for_url, nonce_for_url) = (state.clone(), nonce.clone());
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state_for_url),
            move || Nonce::new(nonce_for_url),
        );
        for scope in &self.settings.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, _, _) = request.set_pkce_challenge(challenge).url();
        Ok(Request { url: url.to_string(), state, nonce, pkce_verifier: verifier.secret().clone() })
    }

    /// Finishes a sign-in: exchanges `code` (with the PKCE verifier) at the token endpoint
    /// and validates the ID token against `nonce` at `now` (Unix seconds). A token signed by
    /// a key we do not hold makes us fetch the JWKS again, once.
    pub async fn finish(&self, code: &str, pkce_verifier: &str, nonce: &str, now: i64) -> Result<Identity, Error> {
        let keys = self.keys.lock().await.set.clone();
        let client = self.client(keys)?;
        let caller = |request| send(self.http.clone(), request);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| Error::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&caller)
            .await
            .map_err(token_error)?;
        let _ = response.access_token();
        let id_token =
            response.id_token().ok_or_else(|| Error::Invalid("the token answer holds no ID token".into()))?;
        match self.verify(&client, id_token, nonce, now) {
            Err(VerifyError::UnknownKey) => {
                let set = self.refresh_keys().await?;
                let client = self.client(set)?;
                self.verify(&client, id_token, nonce, now).map_err(VerifyError::into_error)
            }
            other => other.map_err(VerifyError::into_error),
        }
    }

    /// Fetches the JWKS again (at most every [`JWKS_REFRESH_SECONDS`]).
    async fn refresh_keys(&self) -> Result<CoreJsonWebKeySet, Error> {
        let mut keys = self.keys.lock().await;
        let due = keys.refetched.is_none_or(|at| at.elapsed() >= Duration::from_secs(JWKS_REFRESH_SECONDS));
        if due || keys.set.keys().is_empty() {
            let caller = |request| send(self.http.clone(), request);
            let set = CoreJsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &caller)
                .await
                .map_err(|e| Error::Unavailable(format!("JWKS: {e}")))?;
            tracing::info!(keys = set.keys().len(), "OpenID Connect: fetched the identity provider's keys again");
            *keys = Keys { set, refetched: Some(std::time::Instant::now()) };
        } else {
            // Fetched moments ago: the key is not there. (Still accept the current keys the
            // second try verifies with.)
        }
        Ok(keys.set.clone())
    }

    fn verify<C>(
        &self,
        client: &C,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, VerifyError>
    where
        C: IdTokenVerifierSource,
    {
        let at = |seconds: i64| chrono::DateTime::<chrono::Utc>::from_timestamp(seconds, 0).unwrap_or_default();
        // `exp` is checked against `now - leeway`.
        let verifier = client
            .verifier()
            .set_allowed_algs(allowed_algs())
            .set_time_fn(move || at(now - LEEWAY_SECONDS))
            .set_issue_time_verifier_fn(move |iat| {
                let iat = iat.timestamp();
                if iat > now + LEEWAY_SECONDS {
                    Err(format!("issued in the future ({iat}, now {now})"))
                } else if iat < now - MAX_AGE_SECONDS - LEEWAY_SECONDS {
                    Err(format!("issued too long ago ({iat}, now {now})"))
                } else {
                    Ok(())
                }
            });
        let expected = Nonce::new(nonce.to_owned());
        let claims = match id_token.claims(&verifier, &expected) {
            Ok(claims) => claims,
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => return Err(VerifyError::UnknownKey),
            Err(err) => return Err(VerifyError::Invalid(err.to_string())),
        };
        // `azp` (OpenID Connect Core 3.1.3.7, steps 4 and 5): when present it must be us;
        // with several audiences it must be present (other audiences are refused anyway).
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != self.settings.client_id => {
                return Err(VerifyError::Invalid(format!("the token was issued to {:?}", azp.as_str())));
            }
            None if claims.audiences().len() > 1 => {
                return Err(VerifyError::Invalid("several audiences and no authorized party".into()));
            }
            _ => {}
        }
        let subject = claims.subject().as_str();
        if subject.is_empty() || subject.len() > 255 {
            return Err(VerifyError::Invalid("the subject is empty or longer than 255 characters".into()));
        }
        Ok(Identity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: subject.to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified(),
            amr: claims
                .auth_method_refs()
                .map(|a| a.iter().map(|r| r.as_str().to_owned()).collect())
                .unwrap_or_default(),
            acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        })
    }
}

/// The client's ID token verifier (a trait so that `verify` needs not name the client's
/// long type).
trait IdTokenVerifierSource {
    fn verifier(&self) -> openidconnect::core::CoreIdTokenVerifier<'_>;
}

impl<HasUserInfoUrl, HasTokenUrl> IdTokenVerifierSource
    for openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        HasTokenUrl,
        HasUserInfoUrl,
    >
where
    HasTokenUrl: openidconnect::EndpointState,
    HasUserInfoUrl: openidconnect::EndpointState,
{
    fn verifier(&self) -> openidconnect::core::CoreIdTokenVerifier<'_> {
        self.id_token_verifier()
    }
}

enum VerifyError {
    UnknownKey,
    Invalid(String),
}

impl VerifyError {
    fn into_error(self) -> Error {
        match self {
            VerifyError::UnknownKey => {
                Error::Invalid("the ID token is signed by a key the provider does not publish".into())
            }
            VerifyError::Invalid(m) => Error::Invalid(format!("ID token: {m}")),
        }
    }
}

fn discovery_error(err: openidconnect::DiscoveryError<HttpError>) -> Error {
    match err {
        openidconnect::DiscoveryError::Request(e) => Error::Unavailable(e.to_string()),
        openidconnect::DiscoveryError::Response(status, _, _) if status.is_server_error() => {
            Error::Unavailable(format!("HTTP {status}"))
        }
        openidconnect::DiscoveryError::Validation(e) => Error::Invalid(e),
        other => Error::Invalid(other.to_string()),
    }
}

fn token_error(
    err: openidconnect::RequestTokenError<
        HttpError,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> Error {
    match err {
        openidconnect::RequestTokenError::ServerResponse(response) => {
            Error::Refused(response.error().as_ref().to_owned())
        }
        openidconnect::RequestTokenError::Request(e) => Error::Unavailable(e.to_string()),
        openidconnect::RequestTokenError::Parse(e, _) => Error::Invalid(format!("token answer: {e}")),
        openidconnect::RequestTokenError::Other(e) => Error::Unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(acceptable_url("https://idp.example.com/realms/x"));
        assert!(acceptable_url("http://127.0.0.1:8080"));
        assert!(acceptable_url("http://[::1]:8080/x"));
        assert!(acceptable_url("http://localhost:3000"));
        assert!(!acceptable_url("http://idp.example.com"));
        assert!(!acceptable_url("http://127.0.0.1.example.com"));
        assert!(!acceptable_url("ftp://127.0.0.1"));
        assert!(!acceptable_url("not a url"));
    }
}
