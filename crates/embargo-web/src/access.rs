//! Taking access away and getting it back: the offboarding forms of the team page
//! (disable, enable, delete an account; reset its password or second factor; take a
//! product from a responder; rename or delete a product), removing a member from a report,
//! and recovery codes (shown once, after TOTP set-up and on request from the account page).
//!
//! The forms are plain server-rendered POSTs behind the same Fetch-Metadata CSRF layer as
//! every other form; the use cases in `embargo_app::accounts` check permission and audit.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::{App, accounts, reports};
use serde::Deserialize;

use crate::auth::Team;
use crate::error::WebError;
use crate::extract::{Form, Path, ReportPath};
use crate::team::{EmailInput, admin_result, back, recovery_codes_page};

#[derive(Deserialize)]
pub(crate) struct AccountInput {
    email: String,
    /// A checkbox that must be ticked for destructive actions.
    #[serde(default)]
    confirm: String,
}

fn confirmed(input: &AccountInput) -> Result<(), embargo_app::AppError> {
    if input.confirm == "yes" { Ok(()) } else { Err(embargo_app::AppError::Invalid("tick the box to confirm".into())) }
}

pub(crate) async fn disable_user(State(app): State<App>, who: Team, Form(input): Form<AccountInput>) -> Response {
    let result = accounts::disable_user(&app, &who.actor, &input.email).await.map(|_| ());
    admin_result(&app, &who, result, "disabled").await
}

pub(crate) async fn enable_user(State(app): State<App>, who: Team, Form(input): Form<AccountInput>) -> Response {
    let result = accounts::enable_user(&app, &who.actor, &input.email).await;
    admin_result(&app, &who, result, "enabled").await
}

pub(crate) async fn delete_user(State(app): State<App>, who: Team, Form(input): Form<AccountInput>) -> Response {
    let result = match confirmed(&input) {
        Ok(()) => accounts::delete_user(&app, &who.actor, &input.email).await.map(|_| ()),
        Err(err) => Err(err),
    };
    admin_result(&app, &who, result, "deleted").await
}

#[derive(Deserialize)]
pub(crate) struct PasswordInput {
    email: String,
    password: String,
}

pub(crate) async fn reset_password(State(app): State<App>, who: Team, Form(input): Form<PasswordInput>) -> Response {
    let result = accounts::reset_password(&app, &who.actor, &input.email, Some(&input.password)).await.map(|_| ());
    admin_result(&app, &who, result, "password").await
}

pub(crate) async fn reset_totp(State(app): State<App>, who: Team, Form(input): Form<AccountInput>) -> Response {
    let result = match confirmed(&input) {
        Ok(()) => accounts::reset_totp(&app, &who.actor, &input.email).await,
        Err(err) => Err(err),
    };
    admin_result(&app, &who, result, "totp").await
}

pub(crate) async fn remove_responder(
    State(app): State<App>,
    who: Team,
    Path(id): Path<i64>,
    Form(input): Form<EmailInput>,
) -> Response {
    let result = accounts::remove_product_responder(&app, &who.actor, id, &input.email).await;
    admin_result(&app, &who, result, "responder-removed").await
}

#[derive(Deserialize)]
pub(crate) struct RenameInput {
    name: String,
}

pub(crate) async fn rename_product(
    State(app): State<App>,
    who: Team,
    Path(id): Path<i64>,
    Form(input): Form<RenameInput>,
) -> Response {
    let result = accounts::rename_product(&app, &who.actor, id, &input.name).await;
    admin_result(&app, &who, result, "renamed").await
}

#[derive(Deserialize)]
pub(crate) struct ConfirmInput {
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn delete_product(
    State(app): State<App>,
    who: Team,
    Path(id): Path<i64>,
    Form(input): Form<ConfirmInput>,
) -> Response {
    let result = if input.confirm == "yes" {
        accounts::delete_product(&app, &who.actor, id).await
    } else {
        Err(embargo_app::AppError::Invalid("tick the box to confirm".into()))
    };
    admin_result(&app, &who, result, "product-deleted").await
}

/// Takes a member off a report.
pub(crate) async fn remove_member(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<EmailInput>,
) -> Result<Response, WebError> {
    let done = reports::remove_report_member(&app, &who.actor, &reference, &input.email).await?;
    Ok(back(&reference, if done.still_via_product { "member-removed-product" } else { "member-removed" }))
}

/// A new set of recovery codes for the signed-in member (the old set stops working).
pub(crate) async fn new_recovery_codes(State(app): State<App>, who: Team) -> Response {
    match accounts::my_recovery_codes(&app, &who.actor).await {
        Ok(codes) => recovery_codes_page(&app, codes, "/account"),
        Err(embargo_app::AppError::Conflict(_)) => Redirect::to("/account?done=recovery-none").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}
