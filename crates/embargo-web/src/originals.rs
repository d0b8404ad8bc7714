//! "View original": a message as it was received, with its headers, shown as escaped text
//! (and downloadable byte for byte). Team only, need-to-know, and audited as a read.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::reports;
use embargo_app::{App, AppError};
use embargo_domain::ReferenceId;

use crate::auth::Team;
use crate::error::WebError;
use crate::render::{self, Layout, page};

#[derive(Template)]
#[template(path = "original.html")]
struct OriginalPage {
    layout: Layout,
    reference: String,
    id: i64,
    size: String,
    invalid_bytes: usize,
    text_html: String,
}

/// The original bytes as HTML: UTF-8 runs through [`render::text`], every other byte as a
/// marked replacement character that names the byte (nothing is dropped silently). Returns
/// the HTML and the number of bytes that were not UTF-8.
pub fn bytes_html(raw: &[u8]) -> (String, usize) {
    let mut html = String::with_capacity(raw.len() + raw.len() / 8);
    let mut invalid = 0;
    for chunk in raw.utf8_chunks() {
        html.push_str(&render::text(chunk.valid()));
        for byte in chunk.invalid() {
            invalid += 1;
            html.push_str(&format!("<span class=\"ctl\" data-cp=\"byte 0x{byte:02X}\">\u{FFFD}</span>"));
        }
    }
    (html, invalid)
}

async fn original(app: &App, who: &Team, reference: &str, id: i64) -> Result<(ReferenceId, Vec<u8>), AppError> {
    let reference: ReferenceId = reference.parse().map_err(|_| AppError::NotFound(format!("report {reference}")))?;
    let raw = reports::original_message(app, &who.actor, &reference, id).await?;
    Ok((reference, raw))
}

pub(crate) async fn show(State(app): State<App>, who: Team, Path((r, id)): Path<(String, i64)>) -> Response {
    let layout = Layout::team(&app, format!("Original message · {r}"), "inbox", &who);
    match original(&app, &who, &r, id).await {
        Ok((reference, raw)) => {
            let (text_html, invalid_bytes) = bytes_html(&raw);
            page(
                StatusCode::OK,
                &OriginalPage {
                    layout,
                    reference: reference.to_string(),
                    id,
                    size: format!("{} bytes", raw.len()),
                    invalid_bytes,
                    text_html,
                },
            )
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

pub(crate) async fn download(State(app): State<App>, who: Team, Path((r, id)): Path<(String, i64)>) -> Response {
    match original(&app, &who, &r, id).await {
        Ok((reference, raw)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{reference}-message-{id}.eml\"")),
                (header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            raw,
        )
            .into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}
