//! The first-admin page, reached through the one-time link printed at first start.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use embargo_app::{App, AppError, accounts};
use serde::Deserialize;

use crate::html::{escape, page};

#[derive(Deserialize)]
pub(crate) struct AdminForm {
    email: String,
    password: String,
    confirm: String,
}

fn form(token: &str, email: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| format!("<p role=\"alert\"><strong>{}</strong></p>", escape(e)));
    format!(
        "<h1>Create the first administrator</h1>{error}\
         <form method=\"post\" action=\"/setup/{token}\">\
         <p><label for=\"email\">E-mail address</label><br>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\"></p>\
         <p><label for=\"password\">Password (at least {min} characters)</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required></p>\
         <p><label for=\"confirm\">Repeat the password</label><br>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required></p>\
         <p><button type=\"submit\">Create administrator</button></p></form>",
        token = escape(token),
        email = escape(email),
        min = accounts::MIN_PASSWORD_LEN,
    )
}

fn gone() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<h1>This link is not valid</h1><p>It was used already, has expired, or an administrator \
         exists. Restart the server to print a new link while no administrator exists.</p>",
    )
}

fn internal(err: &AppError) -> Response {
    tracing::error!(error = %err, "setup failed");
    page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "<h1>Something went wrong</h1><p>Please try again.</p>")
}

pub(crate) async fn show_form(State(app): State<App>, Path(token): Path<String>) -> Response {
    match accounts::first_admin_link_valid(&app, &token).await {
        Ok(true) => page(StatusCode::OK, "Create the first administrator", &form(&token, "", None)),
        Ok(false) => gone(),
        Err(err) => internal(&err),
    }
}

/// Cross-site form posts are refused: browsers send `Sec-Fetch-Site` (and `Origin`) with
/// every POST, and only same-origin ones are accepted.
fn same_origin(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => {
            let origin = headers.get("origin").and_then(|v| v.to_str().ok());
            let host = headers.get("host").and_then(|v| v.to_str().ok());
            match (origin, host) {
                (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, h)| h == host),
                (Some(_), None) => false,
                (None, _) => true,
            }
        }
    }
}

pub(crate) async fn create_admin(
    State(app): State<App>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(input): Form<AdminForm>,
) -> Response {
    if !same_origin(&headers) {
        return page(StatusCode::FORBIDDEN, "Refused", "<h1>Cross-site request refused</h1>");
    }
    if input.password != input.confirm {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Create the first administrator",
            &form(&token, &input.email, Some("The passwords do not match.")),
        );
    }
    match accounts::create_first_admin(&app, &token, &input.email, &input.password).await {
        Ok(_) => page(
            StatusCode::CREATED,
            "Administrator created",
            "<h1>Administrator created</h1><p>The account exists. <a href=\"/login\">Sign in</a>: \
             you will set up two-factor sign-in with an authenticator app.</p>",
        ),
        Err(AppError::Invalid(message)) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Create the first administrator",
            &form(&token, &input.email, Some(&message)),
        ),
        Err(AppError::NotFound(_)) => gone(),
        Err(err) => internal(&err),
    }
}
