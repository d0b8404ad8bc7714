//! Command implementations: load configuration, open the app, call one use case, print.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use embargo_app::config::{Config, Overrides};
use embargo_app::reports::ReadPurpose;
use embargo_app::{App, AppError, OpenError, OpenFailure, OpenMode, accounts, audit, intake, jobs, reports};
use embargo_domain::{Actor, ReferenceId, Role, Target};
use tokio::sync::watch;

use crate::cli::{
    AdminCommand, AdvisoryCommand, AuditCommand, CalendarCommand, Cli, Command, ConfigCommand, CveCommand, JobsCommand,
    OutboxCommand, ProductCommand, ReportCommand,
};
use crate::output;

// Exit codes from sysexits.h.
pub const EX_USAGE: u8 = 64;
pub const EX_DATAERR: u8 = 65;
pub const EX_NOINPUT: u8 = 66;
pub const EX_UNAVAILABLE: u8 = 69;
pub const EX_SOFTWARE: u8 = 70;
pub const EX_OSERR: u8 = 71;
pub const EX_CANTCREAT: u8 = 73;
pub const EX_TEMPFAIL: u8 = 75;
pub const EX_NOPERM: u8 = 77;
pub const EX_CONFIG: u8 = 78;

/// A failure to report: one line and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self { message: message.into(), code }
    }
}

impl From<AppError> for Failure {
    fn from(err: AppError) -> Self {
        let code = match &err {
            AppError::NotFound(_) => 1,
            AppError::Forbidden(_) => EX_NOPERM,
            AppError::Conflict(_) => 1,
            AppError::Invalid(_) => EX_DATAERR,
            AppError::Unavailable(_) | AppError::TooMany(_) | AppError::Throttled { .. } => EX_TEMPFAIL,
            AppError::Internal(_) => EX_SOFTWARE,
        };
        let message = match &err {
            AppError::Internal(inner) => format!("{inner:#}"),
            other => other.to_string(),
        };
        Failure::new(code, message)
    }
}

pub(crate) type Outcome = Result<ExitCode, Failure>;

pub(crate) fn local_admin() -> Actor {
    let os_user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "local".into());
    Actor::LocalAdmin { os_user }
}

fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let (http, smtp) = match &cli.command {
        Command::Serve(args) => (args.http.clone(), args.smtp.clone()),
        _ => (None, None),
    };
    let overrides =
        Overrides { data_dir: cli.global.data_dir.clone(), database_url: cli.global.database_url.clone(), http, smtp };
    Config::load(cli.global.config.as_deref(), std::env::vars(), &overrides)
        .map_err(|e| Failure::new(EX_CONFIG, e.to_string()))
}

fn init_logging(config: &Config, long_running: bool) {
    use tracing_subscriber::EnvFilter;
    // One-shot commands stay quiet unless asked; the server logs at the configured level.
    let default = if long_running { config.log.level.clone() } else { "warn".to_owned() };
    let filter = EnvFilter::try_from_env("EMBARGO_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

/// Opens the instance for a command that needs one to exist already (every command but
/// `serve` and `migrate`): a wrong `--data-dir` or database URL is an error, never a new,
/// empty instance.
async fn open(config: Config) -> Result<App, Failure> {
    open_with(config, OpenMode::Existing).await
}

async fn open_with(config: Config, mode: OpenMode) -> Result<App, Failure> {
    let data_dir = config.data_dir.clone();
    let database = config.database_place();
    let (app, opened) =
        App::open_instance(config, std::sync::Arc::new(embargo_app::SystemClock), mode).await.map_err(|err| {
            let code = match &err {
                OpenError::NoInstance(_) => EX_NOINPUT,
                OpenError::Config(_) => EX_CONFIG,
                OpenError::Database { kind: OpenFailure::Unreachable, .. } => EX_UNAVAILABLE,
                OpenError::Database { kind: OpenFailure::Refused, .. } => EX_CONFIG,
                OpenError::Database { kind: OpenFailure::NotADatabase, .. } => EX_DATAERR,
                OpenError::Unavailable(_) => EX_TEMPFAIL,
                OpenError::Failed(_) => EX_SOFTWARE,
            };
            Failure::new(code, err.to_string())
        })?;
    let key_file = data_dir.join("master.key");
    if opened.created {
        eprintln!("embargo: created a new instance in {database}");
    }
    if opened.key == embargo_app::KeySource::Generated {
        eprintln!(
            "embargo: created a new master key in {}; back it up: without it the data cannot be read",
            key_file.display()
        );
    }
    Ok(app)
}

pub async fn run(cli: Cli) -> Outcome {
    if let Command::Config(ConfigCommand::Example) = &cli.command {
        print!("{}", embargo_app::config::EXAMPLE);
        return Ok(ExitCode::SUCCESS);
    }
    // Pure computation: needs no configuration, data directory or database.
    if let Command::Cvss { vector, json } = &cli.command {
        return cvss(vector, *json);
    }
    let config = load_config(&cli)?;
    let long_running = matches!(cli.command, Command::Serve(_) | Command::Worker);
    init_logging(&config, long_running);
    match cli.command {
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Example) | Command::Cvss { .. } => unreachable!("handled above"),
        Command::Serve(_) => serve(config).await,
        Command::Worker => worker(config).await,
        Command::Migrate => {
            let app = open_with(config, OpenMode::Create).await?;
            println!("database is up to date ({})", app.backend_name());
            app.store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(command) => admin(open(config).await?, command).await,
        Command::IngestMail => ingest_mail(config).await,
        Command::Report(command) => report(open(config).await?, command).await,
        Command::Calendar(command) => calendar(open(config).await?, command).await,
        Command::Advisory(command) => advisory(open(config).await?, command).await,
        Command::Cve(command) => cve(open(config).await?, command).await,
        Command::Product(command) => product(open(config).await?, command).await,
        Command::Fix(command) => crate::fix::fix(open(config).await?, command).await,
        Command::Partner(command) => crate::partner::partner(open(config).await?, command).await,
        Command::Notice(command) => crate::partner::notice(open(config).await?, command).await,
        Command::Disclosure(command) => crate::disclosure::run(open(config).await?, command).await,
        Command::Backup { file } => crate::ops::backup(open(config).await?, &file).await,
        Command::Restore { file, identity } => crate::ops::restore(config, &file, identity.as_deref()).await,
        Command::Doctor { json } => crate::ops::doctor(&config, json).await,
        Command::Keys(command) => crate::ops::keys(open(config).await?, command).await,
        Command::Metrics { days } => {
            let app = open(config).await?;
            let query = embargo_app::metrics::DashboardQuery { days };
            let dashboard = embargo_app::metrics::dashboard(&app, &local_admin(), &query).await?;
            print!("{}", embargo_app::metrics::csv(&dashboard));
            app.store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(command) => audit_command(open(config).await?, command).await,
        Command::Jobs(command) => jobs_command(open(config).await?, command).await,
        Command::Outbox(OutboxCommand::List { json }) => {
            let app = open(config).await?;
            output::outbox(&intake::outbox(&app)?, json);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Exit code for an invalid CVSS vector (the CLI contract promises 2, like a usage error).
const EX_CVSS_INVALID: u8 = 2;

fn cvss(vector: &str, as_json: bool) -> Outcome {
    let parsed = embargo_domain::cvss::Vector::parse(vector.trim())
        .map_err(|err| Failure::new(EX_CVSS_INVALID, format!("invalid CVSS vector: {err}")))?;
    output::cvss(&parsed, as_json);
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve(mut config: Config) -> Outcome {
    embargo_web::install_metrics_recorder();
    let http = config.http.clone();
    let smtp = config.smtp.clone();
    let listener = tokio::net::TcpListener::bind(&http)
        .await
        .map_err(|e| Failure::new(EX_UNAVAILABLE, format!("cannot listen on {http}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Failure::new(EX_OSERR, e.to_string()))?;
    // Links sent to people point at the public URL; without one, at the bound address
    // (which differs from the configured one when port 0 was asked for).
    if config.public_url.is_empty() {
        config.public_url = format!("http://{local}");
    }
    let app = open_with(config, OpenMode::Create).await?;
    let smtp_settings = intake::smtp_settings(&app).map_err(|e| Failure::new(EX_CONFIG, e.to_string()))?;
    let starttls = smtp_settings.tls.is_some();
    let smtp_listener = tokio::net::TcpListener::bind(&smtp)
        .await
        .map_err(|e| Failure::new(EX_UNAVAILABLE, format!("cannot listen for SMTP on {smtp}: {e}")))?;
    let smtp_local = smtp_listener.local_addr().map_err(|e| Failure::new(EX_OSERR, e.to_string()))?;
    // Metrics have their own listener (loopback by default): they tell when reports arrive.
    let metrics_listener = if app.config.metrics_listen.is_empty() {
        None
    } else {
        let addr = app.config.metrics_listen.clone();
        Some(tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            Failure::new(
                EX_UNAVAILABLE,
                format!("cannot listen for metrics on {addr}: {e} (set metrics_listen to another address, or empty)"),
            )
        })?)
    };
    let metrics_local = match &metrics_listener {
        Some(l) => Some(l.local_addr().map_err(|e| Failure::new(EX_OSERR, e.to_string()))?),
        None => None,
    };
    tracing::info!(http = %local, smtp = %smtp_local, starttls, database = app.backend_name(), "embargo started");
    let key = embargo_app::openpgp::instance_key(&app).await?;
    let imap = intake::imap_settings(&app).map_err(|e| Failure::new(EX_CONFIG, e.to_string()))?;
    let admin_link = accounts::first_admin_link(&app, &app.config.base_url()).await?;
    // Everything is printed at once, ending with the "Ready" line that scripts wait for.
    println!("Embargo is running at http://{local} ({} database).", app.backend_name());
    println!(
        "SMTP intake at {smtp_local} for {} ({}); outgoing mail {}.",
        app.config.organisation.security_address,
        if starttls { "STARTTLS offered" } else { "no STARTTLS: set mail.tls_certificate" },
        if app.config.mail.relay.is_empty() {
            format!("goes to the outbox {}", app.config.outbox_dir().display())
        } else {
            "goes through the configured relay".to_owned()
        }
    );
    println!("OpenPGP key {} published at {}/.well-known/security.asc", key.fingerprint(), app.config.base_url());
    println!("Reporters: {0}/report (form and status pages). Team: {0}/login.", app.config.base_url());
    match app.config.csaf_provider_url() {
        Some(base) => println!("CSAF trusted provider: {base}/.well-known/csaf/provider-metadata.json"),
        None => {
            tracing::warn!("no CSAF provider: public_url is not https");
            println!(
                "Not a CSAF provider: public_url {} is not https (CSAF requires TLS), so no provider metadata \
                 and no CSAF line in security.txt are published; advisories are still served.",
                app.config.base_url()
            );
        }
    }
    match metrics_local {
        Some(addr) => println!(
            "Metrics for Prometheus at http://{addr}/metrics{}.",
            if app.config.metrics_token.is_empty() { "" } else { " (bearer token required)" }
        ),
        None if app.config.metrics_token.is_empty() => println!("Metrics are off (metrics_listen is empty)."),
        None => println!("Metrics at {}/metrics (bearer token required).", app.config.base_url()),
    }
    if let Some(settings) = &imap {
        println!("IMAP polling {}@{}:{} ({})", settings.username, settings.host, settings.port, settings.mailbox);
    }
    if let Some(link) = admin_link {
        println!();
        println!("No administrator exists yet. Create the first one, within 24 hours, at:");
        println!();
        println!("    {link}");
        println!();
    }
    println!("Ready. Stop with Ctrl-C.");

    let (stop_tx, stop_rx) = watch::channel(false);
    let smtp_server = tokio::spawn(intake::serve_smtp(app.clone(), smtp_listener, smtp_settings, stop_rx.clone()));
    let imap_poller = imap.map(|settings| tokio::spawn(intake::poll_imap(app.clone(), settings, stop_rx.clone())));
    let checkpoints = tokio::spawn(embargo_app::checkpoints::run_periodic(
        app.clone(),
        embargo_app::checkpoints::INTERVAL,
        stop_rx.clone(),
    ));
    let key_watch = tokio::spawn(embargo_app::keys::watch(app.clone(), stop_rx.clone()));
    let worker = tokio::spawn(jobs::Worker::new(app.clone()).run(stop_rx));
    let metrics_server = metrics_listener.map(|listener| {
        let mut stop = stop_tx.subscribe();
        tokio::spawn(embargo_web::serve_metrics(app.clone(), listener, async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }))
    });
    let mut http_stop = stop_tx.subscribe();
    let server = embargo_web::serve(app.clone(), listener, async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    });
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests and running jobs");
        let _ = stop_tx.send(true);
    });
    let served = server.await;
    signal.abort();
    let _ = smtp_server.await;
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    if let Some(poller) = imap_poller {
        let _ = poller.await;
    }
    let _ = worker.await;
    let _ = checkpoints.await;
    let _ = key_watch.await;
    app.store.close().await;
    served.map_err(|e| Failure::new(EX_OSERR, format!("HTTP server failed: {e}")))?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn worker(config: Config) -> Outcome {
    let app = open(config).await?;
    let worker = jobs::Worker::new(app.clone());
    tracing::info!(worker = worker.id(), database = app.backend_name(), "job worker started");
    let (stop_tx, stop_rx) = watch::channel(false);
    let key_watch = tokio::spawn(embargo_app::keys::watch(app.clone(), stop_rx.clone()));
    let running = tokio::spawn(worker.run(stop_rx));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing running jobs");
    let _ = stop_tx.send(true);
    let _ = running.await;
    let _ = key_watch.await;
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The first line of standard input, without its line ending (a password).
fn password_from_stdin() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn admin(app: App, command: AdminCommand) -> Outcome {
    let actor = local_admin();
    match command {
        AdminCommand::CreateUser { email, role, password_stdin } => {
            let role = Role::parse(&role).ok_or_else(|| Failure::new(EX_USAGE, "role must be admin or responder"))?;
            let password = if password_stdin { Some(password_from_stdin()?) } else { None };
            let id = accounts::create_user(&app, &actor, &email, role, password.as_deref()).await?;
            println!("created {} account {} (id {id})", role.as_str(), email.trim().to_lowercase());
            if password.is_none() {
                println!("it has no password yet: use --password-stdin, or an API token");
            }
        }
        AdminCommand::CreateToken { email, name } => {
            let token = accounts::create_token(&app, &actor, &email, &name).await?;
            println!("{token}");
        }
        AdminCommand::DisableUser { email } => {
            let revoked = accounts::disable_user(&app, &actor, &email).await?;
            println!(
                "disabled {}: {} session(s) ended, {} API token(s) revoked",
                email.trim().to_lowercase(),
                revoked.sessions,
                revoked.tokens
            );
        }
        AdminCommand::EnableUser { email } => {
            accounts::enable_user(&app, &actor, &email).await?;
            println!("enabled {} (old sessions and tokens stay revoked)", email.trim().to_lowercase());
        }
        AdminCommand::DeleteUser { email } => {
            let r = accounts::delete_user(&app, &actor, &email).await?;
            println!(
                "deleted {}: {} session(s) ended, {} API token(s) revoked, responsible for {} product(s) no more, \
                 removed from {} report(s), {} report(s) unassigned; its audit entries, messages and notes stay \
                 attributed to its id",
                email.trim().to_lowercase(),
                r.sessions,
                r.tokens,
                r.products,
                r.memberships,
                r.assignments
            );
        }
        AdminCommand::ResetPassword { email, password_stdin } => {
            let given = if password_stdin { Some(password_from_stdin()?) } else { None };
            let password = accounts::reset_password(&app, &actor, &email, given.as_deref()).await?;
            if given.is_none() {
                println!("{password}");
                eprintln!(
                    "embargo: new password for {} printed above (shown once); its sessions were ended",
                    email.trim()
                );
            } else {
                println!("password of {} set; its sessions were ended", email.trim().to_lowercase());
            }
        }
        AdminCommand::RequirePasskey { email, off } => {
            let changed = embargo_app::passkeys::set_required(&app, &actor, &email, !off).await?;
            let email = email.trim().to_lowercase();
            match (off, changed) {
                (false, true) => println!("{email} must now sign in with a passkey"),
                (false, false) => println!("{email} already had to sign in with a passkey"),
                (true, true) => println!("{email} no longer has to sign in with a passkey"),
                (true, false) => println!("{email} did not have to sign in with a passkey"),
            }
        }
        AdminCommand::ResetTotp { email } => {
            accounts::reset_totp(&app, &actor, &email).await?;
            println!(
                "second factor, recovery codes and passkeys of {} removed; it is set up again at the next sign-in",
                email.trim().to_lowercase()
            );
        }
        AdminCommand::RecoveryCodes { email } => {
            for code in accounts::regenerate_recovery_codes(&app, &actor, &email).await? {
                println!("{code}");
            }
            eprintln!("embargo: each code works once in place of a TOTP code; the previous set no longer works");
        }
        AdminCommand::OidcUnlink { email } => {
            let removed = embargo_app::oidc::unlink(&app, &actor, &email).await?;
            println!(
                "{removed} single sign-on identit{} of {} unlinked",
                if removed == 1 { "y" } else { "ies" },
                email.trim().to_lowercase()
            );
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn ingest_mail(config: Config) -> Outcome {
    let limit = config.limits.max_message_bytes;
    let mut raw = Vec::new();
    std::io::stdin()
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| Failure::new(EX_TEMPFAIL, format!("cannot read the message: {e}")))?;
    if raw.len() as u64 > limit {
        // Only `limit + 1` bytes were read: the message is at least that large.
        return Err(Failure::new(
            EX_DATAERR,
            format!(
                "the message is larger than the limit of {limit} bytes as received (limits.max_message_bytes, \
                 advertised as SMTP SIZE)"
            ),
        ));
    }
    let app = open(config).await.map_err(|f| {
        // Anything that stops us from storing the message is temporary for the MTA, so it
        // keeps the message and retries; configuration problems included.
        Failure::new(EX_TEMPFAIL, f.message)
    })?;
    let outcome = intake::ingest_mail(&app, &raw).await.map_err(|err| match err {
        AppError::Invalid(m) => Failure::new(EX_DATAERR, m),
        other => Failure::new(EX_TEMPFAIL, other.to_string()),
    })?;
    app.store.close().await;
    match outcome {
        intake::IngestOutcome::NewReport(r) => println!("new report {r}"),
        intake::IngestOutcome::Reply(r) => println!("reply added to {r}"),
        intake::IngestOutcome::AlreadyReceived(r) => println!("already received as part of {r}"),
        intake::IngestOutcome::Quarantined(r) => println!("quarantined on {r} (not from the reporter)"),
        intake::IngestOutcome::Bounce(r) => println!("delivery failure recorded on {r}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A report reference; a malformed one is refused with an example in this instance's form.
pub(crate) fn parse_reference(app: &App, text: &str) -> Result<ReferenceId, Failure> {
    text.trim().parse().map_err(|_: embargo_domain::ids::ReferenceError| {
        let year = app.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        let prefix = &app.config.organisation.reference_prefix;
        Failure::new(
            EX_USAGE,
            format!(
                "{:?} is not a report reference: they look like PREFIX-YEAR-N, such as {prefix}-{year}-1",
                output::one_line(text, 60)
            ),
        )
    })
}

async fn report(app: App, command: ReportCommand) -> Outcome {
    let actor = local_admin();
    match command {
        ReportCommand::List { state, json } => {
            let list = reports::list(&app, &actor, state.as_deref()).await?;
            output::report_list(&list, json);
        }
        ReportCommand::Show { id, json } => {
            let reference = parse_reference(&app, &id)?;
            let purpose = if json { ReadPurpose::Export } else { ReadPurpose::Read };
            let detail = reports::show(&app, &actor, &reference, purpose).await?;
            output::report_detail(&detail, json);
        }
        ReportCommand::Transition { id, state, duplicate_of } => {
            let reference = parse_reference(&app, &id)?;
            let original = duplicate_of.as_deref().map(|text| parse_reference(&app, text)).transpose()?;
            let target = Target::parse(&state, original).map_err(AppError::from)?;
            let transition = reports::transition(&app, &actor, &reference, target).await?;
            println!("{reference}: {} -> {}", transition.from, transition.to);
        }
        ReportCommand::Reply { id, body, ask, as_user, json } => {
            let reference = parse_reference(&app, &id)?;
            let body = body_text(body)?;
            let actor = acting(&app, &actor, as_user.as_deref()).await?;
            let kind = if ask { reports::TeamMessage::Question } else { reports::TeamMessage::Reply };
            let message = reports::write(&app, &actor, &reference, kind, &body).await?;
            if json {
                println!("{}", serde_json::json!({ "id": reference.to_string(), "message": message, "kind": "reply" }));
            } else if ask {
                println!(
                    "{reference}: reply {message} recorded and queued for the reporter; the report waits in needs-info"
                );
            } else {
                println!("{reference}: reply {message} recorded and queued for the reporter");
            }
        }
        ReportCommand::Note { id, body, as_user, json } => {
            let reference = parse_reference(&app, &id)?;
            let body = body_text(body)?;
            let actor = acting(&app, &actor, as_user.as_deref()).await?;
            let message = reports::write(&app, &actor, &reference, reports::TeamMessage::Note, &body).await?;
            if json {
                println!("{}", serde_json::json!({ "id": reference.to_string(), "message": message, "kind": "note" }));
            } else {
                println!("{reference}: note {message} added");
            }
        }
        ReportCommand::ImportKey { id, attachment, file } => {
            let reference = parse_reference(&app, &id)?;
            let source = match (attachment, file) {
                (Some(n), None) => reports::KeyImport::Attachment(n),
                (None, Some(path)) => reports::KeyImport::Text(
                    std::fs::read_to_string(&path)
                        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))?,
                ),
                _ => return Err(Failure::new(EX_USAGE, "give --attachment N or --file PATH")),
            };
            let fingerprint = reports::import_reporter_key(&app, &actor, &reference, source).await?;
            println!("{reference}: imported the reporter's OpenPGP key {fingerprint}; mail to them is now encrypted");
        }
        ReportCommand::Similar { id, json } => {
            let reference = parse_reference(&app, &id)?;
            let found = reports::similar(&app, &actor, &reference).await?;
            if json {
                let list: Vec<_> = found
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "reference": s.reference.to_string(),
                            "id": s.reference.to_string(),
                            "score": s.score,
                            "state": s.state.code(),
                            "title": s.title,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for s in found {
                    println!(
                        "{}  {:.2}  {:<12} {}",
                        s.reference,
                        s.score,
                        s.state.code(),
                        output::one_line(&s.title, 80)
                    );
                }
            }
        }
        ReportCommand::Assess { id, cvss, cwe, ssvc } => {
            let reference = parse_reference(&app, &id)?;
            let mut latest = None;
            for vector in &cvss {
                let version = if vector.starts_with("CVSS:4.0/") { "4.0" } else { "3.1" };
                latest =
                    Some(embargo_app::assessment::set_cvss(&app, &actor, &reference, version, Some(vector)).await?);
            }
            if cwe.is_some() || ssvc.is_some() {
                let decision = match ssvc.as_deref() {
                    Some(text) => Some(
                        text.parse::<embargo_domain::ssvc::SupplierDecision>()
                            .map_err(|e| Failure::new(EX_USAGE, format!("SSVC vector: {e}")))?,
                    ),
                    None => None,
                };
                let cwe = cwe.unwrap_or_default();
                latest =
                    Some(embargo_app::assessment::set_classification(&app, &actor, &reference, &cwe, decision).await?);
            }
            let Some(assessment) = latest else {
                return Err(Failure::new(EX_USAGE, "give --cvss, --cwe or --ssvc"));
            };
            let severity = assessment.severity().map_or_else(|| "unrated".to_owned(), |s| s.as_str().to_owned());
            println!("{reference}: assessed, severity {severity}");
        }
        ReportCommand::Upstream { id, project, contact } => {
            let reference = parse_reference(&app, &id)?;
            reports::mark_upstream(&app, &actor, &reference, &project, &contact).await?;
            println!("{reference}: upstream {project} ({contact})");
        }
        ReportCommand::Product { id, name } => {
            let reference = parse_reference(&app, &id)?;
            let product = if name.trim().is_empty() {
                None
            } else {
                Some(
                    accounts::products(&app, &actor)
                        .await?
                        .into_iter()
                        .find(|p| p.product.name == name.trim())
                        .ok_or_else(|| Failure::new(EX_DATAERR, format!("no product named {:?}", name.trim())))?
                        .product
                        .id,
                )
            };
            reports::set_product(&app, &actor, &reference, product).await?;
            match product {
                Some(_) => println!("{reference}: under product {}", name.trim()),
                None => println!("{reference}: under no product"),
            }
        }
        ReportCommand::AddMember { id, email } => {
            let reference = parse_reference(&app, &id)?;
            reports::add_member(&app, &actor, &reference, &email).await?;
            println!("{reference}: {} added", email.trim().to_lowercase());
        }
        ReportCommand::RemoveMember { id, email } => {
            let reference = parse_reference(&app, &id)?;
            let done = reports::remove_report_member(&app, &actor, &reference, &email).await?;
            let email = email.trim().to_lowercase();
            println!("{reference}: {email} removed{}", if done.was_assignee { " and unassigned" } else { "" });
            if done.still_via_product {
                println!(
                    "{reference}: {email} still sees it as a responder of its product (embargo product remove-responder)"
                );
            }
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The text of `--body`: as given, or standard input for `-` (kept exactly: not trimmed).
fn body_text(body: String) -> Result<String, Failure> {
    if body != "-" {
        return Ok(body);
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read standard input: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Failure::new(EX_DATAERR, "standard input is not UTF-8 text"))
}

/// Who a command acts as: the local administrator, or with `--as EMAIL` that team account.
pub(crate) async fn acting(app: &App, local: &Actor, as_user: Option<&str>) -> Result<Actor, Failure> {
    match as_user {
        None => Ok(local.clone()),
        Some(email) => Ok(accounts::act_as(app, local, email).await?),
    }
}

fn read_file(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))
}

async fn advisory(app: App, command: AdvisoryCommand) -> Outcome {
    use embargo_app::advisories;
    let actor = local_admin();
    match command {
        AdvisoryCommand::Import { format: _, file } => {
            let draft = advisories::import_osv(&app, &actor, &read_file(&file)?).await?;
            println!("draft {} imported from {}", draft.id, file.display());
            for note in &draft.notes {
                println!("  note: {}", output::one_line(note, 200));
            }
        }
        AdvisoryCommand::List { state, json } => {
            let state = state
                .as_deref()
                .map(|s| {
                    embargo_domain::AdvisoryState::parse(s).ok_or_else(|| {
                        Failure::new(
                            EX_DATAERR,
                            format!(
                                "unknown advisory state {s:?}; expected {}",
                                embargo_domain::AdvisoryState::CODES.join(", ")
                            ),
                        )
                    })
                })
                .transpose()?;
            let list = advisories::list(&app, &actor, state).await?;
            if json {
                let value: Vec<serde_json::Value> = list
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "id": a.id, "public_id": a.public_id, "state": a.state.code(), "title": a.title,
                            "cve_id": a.cve_id, "updated_at": a.updated_at.to_string(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(value));
            } else {
                for a in &list {
                    println!(
                        "{:<16} {:<16} {:<10} {:<15} {}",
                        a.id,
                        a.public_id.as_deref().unwrap_or("-"),
                        a.state,
                        a.cve_id.as_deref().unwrap_or("-"),
                        output::one_line(&a.title, 80)
                    );
                }
            }
        }
        AdvisoryCommand::Export { id, format } => {
            print!("{}", advisories::export(&app, &actor, &id, &format).await?.trim_end());
            println!();
        }
        AdvisoryCommand::Create { title, report } => {
            let report = report.as_deref().map(|text| parse_reference(&app, text)).transpose()?;
            let id = advisories::create(&app, &actor, &title, report.as_ref()).await?;
            println!("draft {id}");
        }
        AdvisoryCommand::Edit { id, file } => {
            let record: embargo_advisory::AdvisoryRecord = serde_json::from_str(&read_file(&file)?)
                .map_err(|e| Failure::new(EX_DATAERR, format!("{}: not an advisory record: {e}", file.display())))?;
            let validation = advisories::update(&app, &actor, &id, record).await?;
            println!("{id}: saved");
            print!("{validation}");
        }
        AdvisoryCommand::Check { id } => {
            let advisory = advisories::get(&app, &actor, &id).await?;
            println!("{id}: {}", advisory.state);
            print!("{}", advisory.validation);
            if !advisory.validation.is_publishable() {
                return Err(Failure::new(EX_DATAERR, "the advisory's outputs are not valid"));
            }
        }
        AdvisoryCommand::Submit { id } => {
            advisories::submit_for_review(&app, &actor, &id).await?;
            println!("{id}: in review");
        }
        AdvisoryCommand::Approve { id } => {
            advisories::approve(&app, &actor, &id).await?;
            println!("{id}: approved");
        }
        AdvisoryCommand::Publish { id, summary } => {
            let revision = advisories::publish(&app, &actor, &id, summary.as_deref()).await?;
            let public_id = advisories::get(&app, &actor, &id).await?.public_id.unwrap_or_default();
            println!("{id}: published as {public_id} (revision {revision})");
        }
        AdvisoryCommand::Withdraw { id, reason } => {
            let revision = advisories::withdraw(&app, &actor, &id, &reason).await?;
            let advisory = advisories::get(&app, &actor, &id).await?;
            let public_id = advisory.public_id.unwrap_or_default();
            println!("{id}: {public_id} withdrawn (revision {revision})");
            if let Some(cve) = advisory.record.cve_id {
                println!("  its CVE record is published as REJECTED here; to reject {cve} at CVE Services too:");
                println!("  embargo cve reject {cve} --reason {:?}", output::one_line(&reason, 200));
            }
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The release settings given on the command line; the signing key is read from its file.
fn release_change(options: crate::cli::ReleaseOptions) -> Result<embargo_app::release::ReleaseChange, Failure> {
    let signing_key = match options.signing_key.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(String::new()),
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::new(EX_DATAERR, format!("cannot read the signing key {path:?}: {e}")))?,
        ),
    };
    // A local directory is named by its absolute path, wherever the command ran.
    let artifacts_dir = options.artifacts_dir.map(|d| absolute_repository(&d));
    Ok(embargo_app::release::ReleaseChange {
        artifacts_url: options.artifacts_url,
        artifacts: options.artifacts,
        artifacts_dir,
        release_command: options.release_command,
        release_webhook: options.release_webhook,
        tag_format: options.tag_format,
        signing_key,
    })
}

/// A repository given as a relative local path, made absolute (URLs and absolute paths
/// stay as given).
fn absolute_repository(value: &str) -> String {
    let value = value.trim();
    if value.is_empty() || value.contains("://") || value.starts_with('/') {
        return value.to_owned();
    }
    std::path::absolute(value).map_or_else(|_| value.to_owned(), |p| p.display().to_string())
}

async fn product(app: App, command: ProductCommand) -> Outcome {
    use embargo_app::accounts;
    let actor = local_admin();
    let find = |list: Vec<accounts::ProductView>, name: &str| {
        list.into_iter()
            .find(|p| p.product.name == name)
            .map(|p| p.product)
            .ok_or_else(|| Failure::new(EX_DATAERR, format!("no product named {name:?}")))
    };
    match command {
        ProductCommand::List { json } => {
            let list = accounts::products(&app, &actor).await?;
            if json {
                let value: Vec<serde_json::Value> = list
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.product.name, "repository_url": p.product.repository_url,
                            "ecosystem": p.product.ecosystem, "purl": p.product.purl,
                            "release_lines": p.product.release_lines, "responders": p.responders,
                            "test_command": p.product.test_command,
                            "release": embargo_app::release::ReleaseView::of(&p.product),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(value));
            } else {
                for p in &list {
                    println!(
                        "{:<24} {:<12} {:<30} {}",
                        output::one_line(&p.product.name, 24),
                        p.product.ecosystem,
                        p.product.purl,
                        p.product.release_lines.join(",")
                    );
                }
            }
        }
        ProductCommand::Add { name, release } => {
            let change = release_change(release)?;
            let id = accounts::create_product(&app, &actor, &name).await?;
            if !change.is_empty() {
                embargo_app::release::configure(&app, &actor, id, &change).await?;
            }
            println!("product {name} added");
        }
        ProductCommand::Show { name, json } => {
            let list = accounts::products(&app, &actor).await?;
            let p = list
                .iter()
                .find(|p| p.product.name == name)
                .ok_or_else(|| Failure::new(EX_DATAERR, format!("no product named {name:?}")))?;
            let release = embargo_app::release::ReleaseView::of(&p.product);
            if json {
                let value = serde_json::json!({
                    "name": p.product.name, "repository_url": p.product.repository_url,
                    "ecosystem": p.product.ecosystem, "purl": p.product.purl,
                    "release_lines": p.product.release_lines, "responders": p.responders,
                    "test_command": p.product.test_command, "release": release,
                });
                println!("{value}");
            } else {
                let rows = [
                    ("name", p.product.name.clone()),
                    ("repository", p.product.repository_url.clone()),
                    ("ecosystem", p.product.ecosystem.clone()),
                    ("purl", p.product.purl.clone()),
                    ("release lines", p.product.release_lines.join(",")),
                    ("responders", p.responders.join(", ")),
                    ("test command", p.product.test_command.clone()),
                    ("tag format", release.tag_format.clone()),
                    ("artifacts url", release.artifacts_url.clone()),
                    ("artifacts", release.artifacts.join(",")),
                    ("artifacts dir", release.artifacts_dir.clone()),
                    ("release command", release.release_command.clone()),
                    ("release webhook", release.release_webhook.clone()),
                    ("signing key", release.signing_key_fingerprint.clone()),
                ];
                for (label, value) in rows {
                    println!("{label:<16} {}", output::one_line(&value, 200));
                }
            }
        }
        ProductCommand::Set { name, repository, ecosystem, purl, release_lines, test_command, release } => {
            let change = release_change(release)?;
            if repository.is_none()
                && ecosystem.is_none()
                && purl.is_none()
                && release_lines.is_none()
                && test_command.is_none()
                && change.is_empty()
            {
                return Err(Failure::new(
                    EX_USAGE,
                    "give --repository, --ecosystem, --purl, --release-lines, --test-command or a release option \
                     (--artifacts-url, --artifacts, --artifacts-dir, --release-command, --release-webhook, \
                     --tag-format, --signing-key)",
                ));
            }
            let current = find(accounts::products(&app, &actor).await?, &name)?;
            if !change.is_empty() {
                embargo_app::release::configure(&app, &actor, current.id, &change).await?;
            }
            if repository.is_none()
                && ecosystem.is_none()
                && purl.is_none()
                && release_lines.is_none()
                && test_command.is_none()
            {
                println!("product {name} updated");
                app.store.close().await;
                return Ok(ExitCode::SUCCESS);
            }
            let current = find(accounts::products(&app, &actor).await?, &name)?;
            // A local repository is named by its absolute path, wherever the command ran.
            let repository = repository.map(|r| absolute_repository(&r));
            // Options not given keep the product's current values; an empty one clears.
            accounts::update_product_details(
                &app,
                &actor,
                current.id,
                repository.as_deref().unwrap_or(&current.repository_url),
                ecosystem.as_deref().unwrap_or(&current.ecosystem),
                purl.as_deref().unwrap_or(&current.purl),
                &release_lines.unwrap_or_else(|| current.release_lines.join(",")),
                test_command.as_deref(),
            )
            .await?;
            println!("product {name} updated");
        }
        ProductCommand::AddResponder { name, email } => {
            let id = find(accounts::products(&app, &actor).await?, &name)?.id;
            accounts::add_product_responder(&app, &actor, id, &email).await?;
            println!("{} is responsible for {name}", email.trim().to_lowercase());
        }
        ProductCommand::RemoveResponder { name, email } => {
            let id = find(accounts::products(&app, &actor).await?, &name)?.id;
            accounts::remove_product_responder(&app, &actor, id, &email).await?;
            println!("{} is no longer responsible for {name}", email.trim().to_lowercase());
        }
        ProductCommand::Rename { name, new_name } => {
            let id = find(accounts::products(&app, &actor).await?, &name)?.id;
            accounts::rename_product(&app, &actor, id, &new_name).await?;
            println!("product {name} renamed to {}", new_name.trim());
        }
        ProductCommand::Delete { name } => {
            let id = find(accounts::products(&app, &actor).await?, &name)?.id;
            accounts::delete_product(&app, &actor, id).await?;
            println!("product {name} deleted");
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn done<T>(result: embargo_app::cve::Done<T>, sent: impl FnOnce(T) -> String) {
    match result {
        embargo_app::cve::Done::Sent(value) => println!("{}", sent(value)),
        embargo_app::cve::Done::DryRun(request) => {
            println!("dry run (cve_services.dry_run = true): nothing was sent; the request would be:\n");
            print!("{request}");
        }
    }
}

async fn cve(app: App, command: CveCommand) -> Outcome {
    use embargo_app::cve;
    let actor = local_admin();
    match command {
        CveCommand::Reserve { count } => {
            done(cve::reserve(&app, &actor, count).await?, |ids| format!("reserved {}", ids.join(" ")))
        }
        CveCommand::List { json } => {
            let rows = cve::list(&app, &actor).await?;
            if json {
                let value: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| serde_json::json!({ "cve_id": r.cve_id, "state": r.state.code(), "advisory": r.advisory_id }))
                    .collect();
                println!("{}", serde_json::Value::Array(value));
            } else {
                for r in &rows {
                    println!("{:<18} {:<10} {}", r.cve_id, r.state, r.advisory_id.as_deref().unwrap_or("-"));
                }
            }
        }
        CveCommand::Assign { cve: id, advisory } => {
            cve::assign(&app, &actor, &id, &advisory).await?;
            println!("{id} assigned to {advisory}; the advisory is back in draft for review");
        }
        CveCommand::Publish { advisory } => {
            done(cve::publish(&app, &actor, &advisory).await?, |id| format!("{id}: CNA container published"))
        }
        CveCommand::Reject { cve: id, reason } => {
            done(cve::reject(&app, &actor, &id, &reason).await?, |id| format!("{id}: rejected"))
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn calendar(app: App, command: CalendarCommand) -> Outcome {
    let actor = local_admin();
    let date = |text: &str| {
        text.parse::<jiff::civil::Date>()
            .map_err(|_| Failure::new(EX_USAGE, format!("{text:?} is not a date YYYY-MM-DD")))
    };
    match command {
        CalendarCommand::Show { json } => {
            let view = embargo_app::sla::calendar(&app, &actor).await?;
            if json {
                let value = serde_json::json!({
                    "time_zone": view.settings.time_zone,
                    "weekend": view.settings.weekend,
                    "holidays": view.holidays.iter().map(|h| serde_json::json!({ "date": h.day, "name": h.name })).collect::<Vec<_>>(),
                    "yearly": view.yearly.iter().map(|y| serde_json::json!({ "rule": y.rule, "description": y.description, "name": y.name })).collect::<Vec<_>>(),
                });
                println!("{value}");
            } else {
                println!("time zone: {}", view.settings.time_zone);
                println!("weekend:   {}", view.settings.weekend.join(", "));
                for h in &view.holidays {
                    println!("{}  {}", h.day, output::one_line(&h.name, 80));
                }
                for y in &view.yearly {
                    println!("{}  {}  [{}]", y.description, output::one_line(&y.name, 80), y.rule);
                }
            }
        }
        CalendarCommand::Set { time_zone, weekend } => {
            embargo_app::sla::set_calendar(&app, &actor, &time_zone, &weekend).await?;
            println!("calendar: {time_zone}, weekend {}", weekend.join(", "));
        }
        CalendarCommand::Add { date: day, name } => {
            let added = embargo_app::sla::add_holidays(&app, &actor, &[(date(&day)?, name)]).await?;
            println!("{day}: {}", if added == 1 { "holiday added" } else { "already a holiday" });
        }
        CalendarCommand::Remove { date: day } => {
            embargo_app::sla::remove_holiday(&app, &actor, &date(&day)?.to_string()).await?;
            println!("{day}: holiday removed");
        }
        CalendarCommand::RemoveYearly { rule } => {
            embargo_app::sla::remove_holiday_rule(&app, &actor, &rule).await?;
            println!("{rule}: yearly holiday removed");
        }
        CalendarCommand::Import { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", file.display())))?;
            let text = embargo_app::sla::ics_text(bytes)?;
            let added = embargo_app::sla::import_ics(&app, &actor, &text).await?;
            println!("{added} holidays added from {}", file.display());
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn audit_command(app: App, command: AuditCommand) -> Outcome {
    let actor = local_admin();
    match command {
        AuditCommand::Verify { checkpoints, checkpoint_key } => {
            use embargo_app::checkpoints::{self as cp, CheckpointCheck};
            // Read the inputs first: a missing file is a usage error, not a verdict.
            let exported = checkpoints.as_deref().map(read_file).transpose()?;
            let trusted = match (&exported, &checkpoint_key) {
                (None, _) => None,
                (Some(_), Some(path)) => Some(read_file(path)?.trim().to_owned()),
                (Some(_), None) => Some(cp::local_public_key(&app)?),
            };
            match audit::verify(&app, &actor).await? {
                audit::Verification::Intact(n) => println!("audit trail intact: {n} entries verified"),
                audit::Verification::Broken(err) => {
                    println!("AUDIT TRAIL BROKEN: {err}");
                    return Ok(ExitCode::from(1));
                }
            }
            if let (Some(text), Some(key)) = (exported, trusted) {
                match cp::verify_against(&app, &actor, &text, &key).await? {
                    CheckpointCheck::Consistent { checked, latest } => {
                        println!("consistent with {checked} signed checkpoint(s), the latest at entry {latest}");
                    }
                    CheckpointCheck::BadCheckpoint { line, reason } => {
                        println!("CHECKPOINT FILE INVALID: line {line}: {reason}");
                        return Ok(ExitCode::from(1));
                    }
                    CheckpointCheck::Broken(err) => {
                        println!("AUDIT TRAIL BROKEN: {err}");
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            let checkpoint = embargo_app::checkpoints::checkpoint(&app, &actor).await?;
            println!("{}", serde_json::to_string(&checkpoint).map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?);
            eprintln!(
                "embargo: checkpoint of entry {} appended to {}; keep a copy elsewhere",
                checkpoint.seq,
                app.config.data_dir.join(embargo_app::checkpoints::FILE).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List { after, limit, json } => {
            let entries = audit::list(&app, &actor, after, limit).await?;
            output::audit_entries(&entries, json);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn jobs_command(app: App, command: JobsCommand) -> Outcome {
    let actor = local_admin();
    match command {
        JobsCommand::Probe { count, hold_ms } => {
            let ids = embargo_app::diagnostics::enqueue_probes(&app, &actor, count, hold_ms).await?;
            println!("enqueued {} probe job(s): {ids:?}", ids.len());
        }
        JobsCommand::List { state, limit, json } => {
            let list = jobs::list(&app, &actor, state.as_deref(), limit).await?;
            output::job_list(&list, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}
