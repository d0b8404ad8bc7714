//! The first-admin page, reached through the one-time link printed at first start.
//! (Cross-site posts are refused by the router's CSRF layer, as everywhere.)

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use embargo_app::{App, AppError, accounts};
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{Form, Path};
use crate::render::{self, Layout, page};

#[derive(Deserialize)]
pub(crate) struct AdminForm {
    email: String,
    password: String,
    confirm: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    email: String,
    error: Option<String>,
    /// The field the error is about.
    bad: &'static str,
    min: usize,
}

fn form(app: &App, status: StatusCode, token: &str, email: &str, error: Option<&str>) -> Response {
    page(
        status,
        &SetupPage {
            layout: Layout::public(app, "Create the first administrator", ""),
            token: token.to_owned(),
            email: email.to_owned(),
            bad: match error.map(str::to_lowercase) {
                Some(e) if e.contains("do not match") => "confirm",
                Some(e) if e.contains("password") => "password",
                Some(_) => "email",
                None => "",
            },
            error: error.map(str::to_owned),
            min: accounts::MIN_PASSWORD_LEN,
        },
    )
}

fn gone(app: &App) -> Response {
    render::message(
        StatusCode::NOT_FOUND,
        Layout::public(app, "Link not valid", ""),
        "This link is not valid",
        "It was used already, has expired, or an administrator exists. Restart the server to print a new \
         link while no administrator exists.",
        None,
    )
}

pub(crate) async fn show_form(State(app): State<App>, Path(token): Path<String>) -> Response {
    match accounts::first_admin_link_valid(&app, &token).await {
        Ok(true) => form(&app, StatusCode::OK, &token, "", None),
        Ok(false) => gone(&app),
        Err(err) => WebError::from(err).into_response(),
    }
}

pub(crate) async fn create_admin(
    State(app): State<App>,
    Path(token): Path<String>,
    Form(input): Form<AdminForm>,
) -> Response {
    if input.password != input.confirm {
        return form(&app, StatusCode::UNPROCESSABLE_ENTITY, &token, &input.email, Some("The passwords do not match."));
    }
    match accounts::create_first_admin(&app, &token, &input.email, &input.password).await {
        Ok(_) => render::message(
            StatusCode::CREATED,
            Layout::public(&app, "Administrator created", ""),
            "Administrator created",
            "The account exists. Sign in now: you will set up two-factor sign-in with an authenticator app.",
            Some(("/login", "Sign in")),
        ),
        Err(AppError::Invalid(message)) => {
            form(&app, StatusCode::UNPROCESSABLE_ENTITY, &token, &input.email, Some(&message))
        }
        Err(AppError::NotFound(_)) => gone(&app),
        Err(err) => WebError::from(err).into_response(),
    }
}
