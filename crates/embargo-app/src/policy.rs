//! What the instance publishes about its policy: security.txt (RFC 9116), generated from the
//! configuration and signed with the instance key.

use jiff::SignedDuration;

use crate::{App, AppError};

/// `/.well-known/security.txt`: contact, expiry (always renewed: it is generated on each
/// request, less than a year ahead), where the OpenPGP key is, the policy page, the
/// preferred languages, the canonical URL and the CSAF provider metadata; signed
/// with an OpenPGP cleartext signature.
///
/// The `CSAF:` line (the RFC 9116 extension registered by CSAF 2.0, §7.1.8) is there whenever
/// the instance is a CSAF provider (an `https` public URL, `Config::csaf_provider_url`; the
/// standard forbids an `http://` line): the provider metadata is valid with no advisory
/// published, and a line that is present from the first start says nothing about whether
/// anything is published or embargoed.
pub async fn security_txt(app: &App) -> Result<String, AppError> {
    let base = app.config.base_url();
    let expires = app
        .now()
        .checked_add(SignedDuration::from_hours(24 * 180))
        .map_err(|e| AppError::Internal(e.into()))?
        .round(jiff::Unit::Second)
        .map_err(|e| AppError::Internal(e.into()))?;
    let text = format!(
        "# Security contact of {name}. Reports are handled by Embargo.\n\
         Contact: mailto:{address}\n\
         Expires: {expires}\n\
         Encryption: {base}/.well-known/security.asc\n\
         Policy: {base}/policy\n\
         Preferred-Languages: {languages}\n\
         Canonical: {base}/.well-known/security.txt\n{csaf}",
        name = app.config.organisation.name.replace(['\n', '\r'], " "),
        address = app.config.organisation.security_address,
        languages = app.config.web.preferred_languages.replace(['\n', '\r'], ""),
        csaf = match app.config.csaf_provider_url() {
            Some(provider) => format!("CSAF: {provider}/.well-known/csaf/provider-metadata.json\n"),
            None => String::new(),
        },
    );
    let key = crate::openpgp::instance_key(app).await?;
    key.clearsign(&text).map_err(|e| AppError::Internal(e.into()))
}
