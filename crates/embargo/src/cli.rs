//! The command-line contract. Later work and outside checks build on these names: keep them
//! stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Embargo: coordinated vulnerability disclosure, from private report to public advisory.
#[derive(Debug, Parser)]
#[command(
    name = "embargo",
    version,
    about = "Embargo: coordinated vulnerability disclosure, from private report to public advisory",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts (before or after the command name).
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Data directory (database, master key, outbox) [default: ./embargo-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://USER:PASSWORD@HOST/DB [default: SQLite in the data directory]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Configuration file (TOML; see `embargo config example`)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: web app and API, mail intake and background jobs
    Serve(ServeArgs),
    /// Run background job workers only (scale-out processes beside `serve`)
    Worker,
    /// Apply database migrations and exit
    Migrate,
    /// Show or explain configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage team accounts and API tokens
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Read one RFC 5322 message on standard input and file it as a report or reply (for MTA pipes)
    IngestMail,
    /// List, read and move reports
    #[command(subcommand)]
    Report(ReportCommand),
    /// Verify and read the audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect and exercise the job queue
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Outgoing mail kept in the outbox Maildir (when no relay is configured)
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The business calendar that SLA deadlines count working days on
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Advisories: import, list, export, review and publish
    #[command(subcommand)]
    Advisory(AdvisoryCommand),
    /// CVE Services: reserve IDs, assign them, publish CNA containers, reject (dry run unless configured)
    #[command(subcommand)]
    Cve(CveCommand),
    /// The product catalogue
    #[command(subcommand)]
    Product(ProductCommand),
    /// Private fix repositories: open one for an accepted report, invite fix developers, follow CI and the backport matrix
    #[command(subcommand)]
    Fix(FixCommand),
    /// Partner organisations that receive embargoed notices: add, list, change, suspend, their contacts and keys, the lists' embargo policies
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Embargoed notices to partners: draft (the date checked against the policy), edit, send, status; leaks, breaking and lifting the embargo, the public pre-announcement
    #[command(subcommand)]
    Notice(NoticeCommand),
    /// The disclosure runbook: plan the public disclosure of a report at an instant, rehearse it, arm it with a second person's approval, and follow it (merge and push, binaries, advisory, CVE, announcements, close-out)
    #[command(subcommand)]
    Disclosure(DisclosureCommand),
    /// Take an online, consistent backup into one encrypted file (age: to EMBARGO_BACKUP_RECIPIENT, or with EMBARGO_BACKUP_PASSPHRASE); the master key travels inside it
    Backup {
        /// The backup file to write (replaced only once the new one is whole)
        file: PathBuf,
    },
    /// Restore a backup into an empty data directory (and, for PostgreSQL, an empty database given with --database-url); refuses a target that holds anything
    Restore {
        /// The backup file
        file: PathBuf,
        /// The age identity file the backup was encrypted to [default: EMBARGO_BACKUP_IDENTITY; or EMBARGO_BACKUP_PASSPHRASE]
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Check the setup (data directory, keys, database and migrations, public_url, TLS files, the relay, DNS for sender authentication, the clock); exits 0 when healthy, 1 with what to fix
    Doctor {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Key rotation: the master key (re-wraps every data key, online, resumable) and the instance's OpenPGP key
    #[command(subcommand)]
    Keys(KeysCommand),
    /// SLA metrics over the reports received in a window (the dashboard's figures, as CSV)
    Metrics {
        /// The window in days, up to 366
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    /// Check a CVSS 3.1 or 4.0 vector and print its canonical form, scores and severities; exits 2 when invalid
    Cvss {
        /// The vector, such as CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H
        vector: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// A product's release settings (the disclosure runbook's push and binaries steps, ADR 26):
/// options not given keep their value, an empty value clears it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReleaseOptions {
    /// Where the release's files and SHA256SUMS appear: an https:// URL (http:// only to a loopback address); {version} is replaced by the release's version ('' clears it)
    #[arg(long)]
    pub artifacts_url: Option<String>,
    /// The file names a release must publish there, comma-separated; {version} is replaced ('' clears them)
    #[arg(long)]
    pub artifacts: Option<String>,
    /// A local directory served at --artifacts-url (may hold {version}) where the release command's dist/ files are published ('' clears it)
    #[arg(long)]
    pub artifacts_dir: Option<String>,
    /// The release build: sh -c in the sandbox, in a checkout of the pushed tag, with EMBARGO_VERSION and EMBARGO_TAG set; it leaves its files in dist/ ('' clears it)
    #[arg(long)]
    pub release_command: Option<String>,
    /// An external CI that gets a signed JSON {product, line, tag, commit} per release (signed with fixes.release_webhook_secret; '' clears it)
    #[arg(long)]
    pub release_webhook: Option<String>,
    /// The release tag's name from the fixed version (default v{version}; '' resets it)
    #[arg(long)]
    pub tag_format: Option<String>,
    /// A file with the OpenPGP public key that signs SHA256SUMS (as SHA256SUMS.asc or .sig; '' clears it)
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// List products with their catalogue details
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Add a product
    Add {
        /// Its name
        name: String,
        #[command(flatten)]
        release: ReleaseOptions,
    },
    /// Show a product's catalogue details and release settings
    Show {
        /// The product's name
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a product's catalogue details: options not given keep their value, an empty value clears it
    Set {
        /// The product's name
        name: String,
        /// Repository URL ('' clears it)
        #[arg(long)]
        repository: Option<String>,
        /// OSV ecosystem, such as crates.io ('' clears it)
        #[arg(long)]
        ecosystem: Option<String>,
        /// Package URL, such as pkg:cargo/example ('' clears it)
        #[arg(long)]
        purl: Option<String>,
        /// Supported release lines, comma-separated; replaces the list ('' clears it). A line is named by the public branch that carries it (main, release-1.x)
        #[arg(long)]
        release_lines: Option<String>,
        /// The command private CI runs (sh -c, in a fresh checkout) on every push to a fix branch ('' clears it)
        #[arg(long)]
        test_command: Option<String>,
        #[command(flatten)]
        release: ReleaseOptions,
    },
    /// Make a team member responsible for a product (they see its reports)
    AddResponder {
        /// The product's name
        name: String,
        /// The member's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Take a product's responsibility from a team member (they stop seeing its reports at once)
    RemoveResponder {
        /// The product's name
        name: String,
        /// The member's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Rename a product (advisories already written keep the name they were written with)
    Rename {
        /// The product's name
        name: String,
        /// Its new name
        new_name: String,
    },
    /// Delete a product; refused while reports name it or advisories list it as affected
    Delete {
        /// The product's name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CveCommand {
    /// Reserve CVE IDs for this year (a person's decision: never automatic)
    Reserve {
        /// How many (1 to 10)
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// The IDs reserved here
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Put a reserved ID into an advisory's record (it goes back to review)
    Assign {
        /// The CVE ID
        cve: String,
        /// The advisory ID
        advisory: String,
    },
    /// Publish (or update) an approved or published advisory's CNA container
    Publish {
        /// The advisory ID
        advisory: String,
    },
    /// Reject a CVE ID
    Reject {
        /// The CVE ID
        cve: String,
        /// Why, in English
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdvisoryCommand {
    /// Import an existing advisory (OSV or GHSA in OSV form) as a draft with a new handle
    Import {
        /// The record's format
        #[arg(long, value_parser = ["osv"], default_value = "osv")]
        format: String,
        /// The file
        file: std::path::PathBuf,
    },
    /// List advisories, most recently changed first
    List {
        /// Only this state (draft, in-review, approved, published, withdrawn)
        #[arg(long)]
        state: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print an advisory in one format, computed from its record
    Export {
        /// Advisory ID, such as SEC-2026-0001
        id: String,
        /// osv, cve (the CNA container), cve-record, csaf, markdown, html or json (the record)
        #[arg(long)]
        format: String,
    },
    /// Start a draft, from a report's assessment when --report is given
    Create {
        /// Title (default: the report's)
        #[arg(long, default_value = "")]
        title: String,
        /// The report it covers
        #[arg(long)]
        report: Option<String>,
    },
    /// Replace a draft's record with a JSON file (as `export --format json` prints it)
    Edit {
        /// Advisory ID
        id: String,
        /// The record, JSON
        file: std::path::PathBuf,
    },
    /// Show every output's validation
    Check {
        /// Advisory ID
        id: String,
    },
    /// Ask for review (every output must be valid)
    Submit {
        /// Advisory ID
        id: String,
    },
    /// Approve an advisory in review (someone other than who asked)
    Approve {
        /// Advisory ID
        id: String,
    },
    /// Publish an approved advisory now (its first publication gives it its public ID)
    Publish {
        /// Advisory ID
        id: String,
        /// What changed, for the revision history
        #[arg(long)]
        summary: Option<String>,
    },
    /// Withdraw a published advisory: a final revision, published at once in every format
    Withdraw {
        /// Advisory ID (its handle or its public ID)
        id: String,
        /// Why, published with the withdrawal
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Show the time zone, weekend days and holidays
    Show {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Set the time zone and weekend days (open reports' deadlines are recomputed)
    Set {
        /// IANA time zone, such as Europe/Paris
        #[arg(long)]
        time_zone: String,
        /// Weekend days, comma-separated, such as saturday,sunday
        #[arg(long, value_delimiter = ',', default_value = "saturday,sunday")]
        weekend: Vec<String>,
    },
    /// Add a holiday
    Add {
        /// The date, YYYY-MM-DD
        date: String,
        /// Its name
        #[arg(default_value = "Holiday")]
        name: String,
    },
    /// Remove a holiday
    Remove {
        /// The date, YYYY-MM-DD
        date: String,
    },
    /// Remove a yearly holiday, given as `calendar show` prints it in brackets
    RemoveYearly {
        /// The rule, such as DTSTART=20101111;INTERVAL=1;DAYS=1
        rule: String,
    },
    /// Import the all-day events of an iCalendar (.ics, UTF-8, at most 1 MiB) file as
    /// holidays; yearly events are kept as rules that cover every year
    Import {
        /// The .ics file
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List the messages in the outbox, oldest first
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP listen address [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// SMTP listen address [default: 127.0.0.1:2525]
    #[arg(long, value_name = "ADDR")]
    pub smtp: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example configuration (the defaults)
    Example,
    /// Print the effective configuration, secrets masked
    Show,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a team account
    CreateUser {
        /// Login e-mail address
        #[arg(long)]
        email: String,
        /// admin or responder
        #[arg(long, value_parser = ["admin", "responder"])]
        role: String,
        /// Read the password from standard input (first line)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token for /api/v1 and print it (shown once)
    CreateToken {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
        /// A name to recognise the token by
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Disable an account: it can no longer sign in, and its sessions and API tokens stop working at once
    DisableUser {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account again (its old sessions and tokens stay revoked)
    EnableUser {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Delete an account: address, password, second factor, sessions, tokens and access go; its audit entries, messages and notes stay attributed to its id. Refused for the last active admin
    DeleteUser {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Set a new password (read from standard input, or a random one printed once) and end the account's sessions
    ResetPassword {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
        /// Read the new password from standard input (first line) instead of making a random one
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account's second factor and recovery codes (a lost authenticator); TOTP is set up again at the next sign-in
    ResetTotp {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Make a new set of one-time recovery codes for an account and print them (shown once; the old set stops working)
    RecoveryCodes {
        /// The account's e-mail address
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// List reports, newest first
    List {
        /// Only reports in this state (new, acknowledged, triaging, needs-info, accepted, fixing, ready-for-disclosure, disclosed, closed)
        #[arg(long)]
        state: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one report with its messages (decrypted) and history
    Show {
        /// Reference ID, such as SEC-2026-1
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Move a report to another state (closed:<reason> to close)
    Transition {
        /// Reference ID
        id: String,
        /// Target state, or closed:invalid|duplicate|not-security|out-of-scope|spam|wont-fix|no-response
        state: String,
        /// With closed:duplicate, the original report's reference
        #[arg(long, value_name = "ID")]
        duplicate_of: Option<String>,
    },
    /// Reply to the reporter: recorded at once, mailed by a job (encrypted when their key is known)
    Reply {
        /// Reference ID
        id: String,
        /// The text; - reads it from standard input
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        body: String,
        /// The reply asks the reporter something: the report waits in needs-info (its deadlines pause)
        #[arg(long)]
        ask: bool,
        /// Act as this team account (its permissions apply and the thread and audit trail name it)
        #[arg(long = "as", value_name = "EMAIL")]
        as_user: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Add an internal note to a report (never shown to the reporter)
    Note {
        /// Reference ID
        id: String,
        /// The text; - reads it from standard input
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        body: String,
        /// Act as this team account (its permissions apply and the thread and audit trail name it)
        #[arg(long = "as", value_name = "EMAIL")]
        as_user: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Import the reporter's OpenPGP key (from an attachment or a file): mail to them is then encrypted
    ImportKey {
        /// Reference ID
        id: String,
        /// The attachment holding the key (its number in `report show`)
        #[arg(long, conflicts_with = "file")]
        attachment: Option<i64>,
        /// A file holding the armored key
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Reports that look like near-duplicates of this one (that you may read)
    Similar {
        /// Reference ID
        id: String,
        /// Print JSON: an array of {reference, score, state, title} (and `id`, the reference
        /// again, as before), best first; score is the TF-IDF cosine, 0 to 1
        #[arg(long)]
        json: bool,
    },
    /// Record the assessment: CVSS vectors (3.1 and/or 4.0), CWE identifiers, an SSVC decision
    Assess {
        /// Reference ID
        id: String,
        /// A CVSS 3.1 or 4.0 vector (repeat for both); the version comes from its prefix
        #[arg(long)]
        cvss: Vec<String>,
        /// CWE identifiers, comma-separated, such as CWE-79,CWE-352 (replaces the list)
        #[arg(long)]
        cwe: Option<String>,
        /// An SSVC supplier decision vector, such as SSVCv2/E:P/U:E/TI:T/PSI:M/
        #[arg(long)]
        ssvc: Option<String>,
    },
    /// Mark a report as being about a dependency, with the upstream project's security contact
    Upstream {
        /// Reference ID
        id: String,
        /// The upstream project, such as Docker
        #[arg(long)]
        project: String,
        /// Its security contact (address or URL)
        #[arg(long)]
        contact: String,
    },
    /// Put a report under a catalogue product (its responders see it; its repository seeds the fix); '' takes it off
    Product {
        /// Reference ID
        id: String,
        /// The product's name
        name: String,
    },
    /// Give a team member access to a report
    AddMember {
        /// Reference ID
        id: String,
        /// The member's e-mail address
        #[arg(long)]
        email: String,
    },
    /// Take a team member off a report (their membership; an assignment to them too)
    RemoveMember {
        /// Reference ID
        id: String,
        /// The member's e-mail address
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exits 1 and names the first bad entry when it was tampered with
    Verify {
        /// Also check the chain against signed checkpoints exported earlier (a file of `audit checkpoint` lines): detects a truncated or rewritten tail
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// The checkpoint public key to trust (hex, as in audit-checkpoint.pub) [default: the key of the data directory]
        #[arg(long, value_name = "FILE")]
        checkpoint_key: Option<PathBuf>,
    },
    /// Sign a checkpoint of the chain's head now, append it to the checkpoint file and print it
    Checkpoint,
    /// Print audit entries
    List {
        /// Only entries after this sequence number
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON lines
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the master key while the server runs: a new key seals from now on, every sealed value is re-wrapped under it in batches, and the old key is retired once nothing is sealed under it. Run it again after an interruption: it resumes
    RotateMaster {
        /// Values re-wrapped per transaction
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Seconds after the switch before the pass that may retire the old key (at least 5): longer than any command started before the switch runs
        #[arg(long, default_value_t = 120)]
        grace_seconds: u64,
    },
    /// Replace the instance's OpenPGP key: the new key is published (security.asc, security.txt, the CSAF provider metadata) and signs from now on; the old secret key is kept to decrypt mail encrypted to it
    RotateOpenpgp,
    /// Show the master key in use (and any rotation under way) and the OpenPGP keys
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Enqueue diagnostic probe jobs (each holds, then records one row)
    Probe {
        /// How many
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// How long each holds, in milliseconds
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
    },
    /// List jobs, newest first
    List {
        /// Only jobs in this state (queued, running, done, dead)
        #[arg(long)]
        state: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixCommand {
    /// Open the report's private fix repository (the report must be accepted and under a product with a repository and release lines); prints its clone URL
    Open {
        /// Reference ID
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Invite a fix developer by e-mail to the report's fix (they see its repository and CI, nothing else); then `admin create-token --email E` gives them a token for git
    Invite {
        /// Reference ID
        id: String,
        /// Their e-mail address
        #[arg(long)]
        email: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// The backport matrix: per release line its fix branch, head commit, CI status and fixed version
    Status {
        /// Reference ID
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a release line of the backport matrix (it feeds the advisory's affected and fixed versions)
    SetLine {
        /// Reference ID
        id: String,
        /// The release line (the public branch that carries it)
        line: String,
        /// The version that will carry the fix, such as 1.4.3
        #[arg(long)]
        fixed_version: Option<String>,
        /// The line's first affected version (default 0: every earlier version)
        #[arg(long)]
        introduced: Option<String>,
        /// The line is affected (default)
        #[arg(long, conflicts_with = "not_affected")]
        affected: bool,
        /// The line is not affected: it needs no fix
        #[arg(long)]
        not_affected: bool,
    },
    /// Let a release line be ready for disclosure although its CI did not pass (audited); an empty reason takes it back
    Override {
        /// Reference ID
        id: String,
        /// The release line
        line: String,
        /// Why
        #[arg(long)]
        reason: String,
    },
    /// Print a CI run's log (the latest run of a line with --line)
    Log {
        /// Reference ID
        id: String,
        /// The run's number (see `fix runs`)
        #[arg(long, conflicts_with = "line")]
        run: Option<i64>,
        /// The latest run on this line's head
        #[arg(long)]
        line: Option<String>,
    },
    /// List the CI runs of the fix, newest first
    Runs {
        /// Reference ID
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a release line's patch series (git format-patch), byte for byte what will be merged at disclosure
    Patches {
        /// Reference ID
        id: String,
        /// The release line
        line: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Add a partner organisation with its contacts (each gets a partner account and an invitation to the portal)
    Add {
        /// The organisation's name
        org: String,
        /// A contact's e-mail address (a role alias preferably); repeat for several
        #[arg(long = "contact", required = true)]
        contacts: Vec<String>,
        /// The contacts' ASCII-armoured OpenPGP keys, one file per --contact, in the same order (a contact without a key gets no details by mail)
        #[arg(long = "key")]
        keys: Vec<std::path::PathBuf>,
        /// The products it receives notices for, comma-separated
        #[arg(long, value_delimiter = ',')]
        products: Vec<String>,
        /// Its partner list (whose embargo policy applies)
        #[arg(long)]
        list: Option<String>,
        /// The version of the embargo terms it accepted (now)
        #[arg(long)]
        terms: Option<String>,
        /// Who vouched for it
        #[arg(long)]
        vouched_by: Option<String>,
        /// The time zone its notices show times in (IANA, such as Europe/Berlin)
        #[arg(long)]
        time_zone: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List partners with their state, products, contacts and keys
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a partner's products, terms, voucher, time zone or list
    Set {
        /// The organisation's name
        org: String,
        /// Products, comma-separated (replaces the list)
        #[arg(long, value_delimiter = ',')]
        products: Option<Vec<String>>,
        /// Terms version accepted (now)
        #[arg(long)]
        terms: Option<String>,
        /// Who vouched for it
        #[arg(long)]
        vouched_by: Option<String>,
        /// Time zone
        #[arg(long)]
        time_zone: Option<String>,
        /// Partner list
        #[arg(long)]
        list: Option<String>,
    },
    /// Suspend a partner (no new notices; its contacts see nothing shared)
    Suspend {
        /// The organisation's name
        org: String,
    },
    /// Make a suspended or removed partner active again
    Activate {
        /// The organisation's name
        org: String,
    },
    /// Remove a partner (kept for the record)
    Remove {
        /// The organisation's name
        org: String,
    },
    /// Add a contact to a partner
    AddContact {
        /// The organisation's name
        org: String,
        /// The contact's address
        #[arg(long)]
        email: String,
        /// Their ASCII-armoured OpenPGP key
        #[arg(long)]
        key: Option<std::path::PathBuf>,
    },
    /// Remove a contact from a partner
    RemoveContact {
        /// The organisation's name
        org: String,
        /// The contact's address
        #[arg(long)]
        email: String,
    },
    /// Show the lists' embargo policies, or set one list's
    Policy {
        /// The list (default: `default`)
        #[arg(long, default_value = "default")]
        list: String,
        /// Longest embargo, in days, from the first notice to the disclosure
        #[arg(long)]
        max_days: Option<u32>,
        /// Least notice before the disclosure, in days
        #[arg(long)]
        min_notice_days: Option<u32>,
        /// The final notice goes this many hours before the disclosure
        #[arg(long)]
        final_notice_hours: Option<u32>,
        /// Preferred disclosure days, comma-separated (tue,wed,thu)
        #[arg(long)]
        days: Option<String>,
        /// Preferred hour, UTC (0-23); `none` for no preference
        #[arg(long)]
        hour: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DisclosureCommand {
    /// Plan (or re-plan) a report's disclosure at an instant: prints the plan ID and its steps; a change disarms an armed plan
    Plan {
        /// Reference ID of the report
        report: String,
        /// The instant (RFC 3339, such as 2026-12-15T16:00:00Z)
        #[arg(long)]
        at: String,
        /// Disclose now (the embargo is broken): runs as soon as it is approved, skipping only the waits
        #[arg(long)]
        emergency: bool,
        /// Act as this team account instead of the local administrator
        #[arg(long = "as")]
        as_user: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Arm a plan: a second person approves exactly what it will publish (not the person who prepared it)
    Approve {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
        /// The approving team account
        #[arg(long = "as")]
        as_user: String,
        /// The content hash the approver reviewed (from `status`); refused if the plan changed since
        #[arg(long)]
        hash: Option<String>,
    },
    /// The dry run: every step against scratch targets; prints what would go out
    Rehearse {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// A plan's state and steps (with --json: {"state","steps":[{"name","state","started_at","finished_at","external_id"}]})
    Status {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Every plan
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show a channel's message, or replace it (from a file, - for standard input); a change disarms an armed plan
    Message {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
        /// The channel (slack, x, mastodon, bluesky, blog, lists)
        channel: String,
        /// A file with the new text
        #[arg(long)]
        text: Option<std::path::PathBuf>,
        /// The new subject (mail) or title (blog)
        #[arg(long)]
        subject: Option<String>,
    },
    /// Decide about a step that failed or waits for a person: --done (it happened) or --retry (it did not)
    Step {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
        /// The step's name (from status)
        step: String,
        /// The effect happened: mark the step done
        #[arg(long, conflicts_with = "retry")]
        done: bool,
        /// It did not happen: try it again
        #[arg(long)]
        retry: bool,
        /// Why (recorded)
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Let a stopped plan go on (after a missed instant, a person decides that it runs now)
    Resume {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
    },
    /// Cancel a plan that is not running
    Cancel {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
        /// Why
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Run a plan's due work now, in this process (what the server's workers do)
    Run {
        /// Plan ID, or the reference of a report in the plan
        plan: String,
    },
}

/// `embargo notice ...`.
#[derive(Debug, Subcommand)]
pub enum NoticeCommand {
    /// Draft a pre-notice for a report's disclosure at an instant: checks the partner lists' embargo policy, prints the notice ID (exit 65 with the reason when the date is refused)
    Draft {
        /// Reference ID
        id: String,
        /// The disclosure instant (RFC 3339, such as 2026-12-15T16:00:00Z)
        #[arg(long)]
        disclose_at: String,
        /// Confirm a Friday, Saturday or Sunday
        #[arg(long)]
        confirm_day: bool,
        /// Partners may deploy the fix to hosted services before the date
        #[arg(long)]
        allow_hosted_deploy: bool,
        /// Partners may tell their customers that an issue exists, its ID and date
        #[arg(long)]
        allow_customer_notice: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Replace a draft's subject and text (the text from a file, or standard input with -)
    Edit {
        /// Notice ID, or a report's reference (its latest notice)
        notice: String,
        /// The new subject
        #[arg(long)]
        subject: Option<String>,
        /// A file with the new text (- for standard input)
        #[arg(long)]
        body: Option<std::path::PathBuf>,
        /// Partners may deploy to hosted services before the date (true/false)
        #[arg(long)]
        allow_hosted_deploy: Option<bool>,
        /// Partners may tell customers (true/false)
        #[arg(long)]
        allow_customer_notice: Option<bool>,
    },
    /// Send a drafted notice to every partner contact of the report's product (the policy is checked again)
    Send {
        /// Notice ID, or a report's reference (its latest notice)
        notice: String,
        /// Confirm a Friday, Saturday or Sunday
        #[arg(long)]
        confirm_day: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Each contact's copy: sent, bounced, seen, acknowledged
    Status {
        /// Notice ID, or a report's reference (its latest notice)
        notice: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a notice's subject and text (the team's version)
    Show {
        /// Notice ID, or a report's reference (its latest notice)
        notice: String,
    },
    /// Record a suspected leak of a report's embargo
    Leak {
        /// Reference ID (or a notice ID)
        id: String,
        /// The partner suspected, if any
        #[arg(long)]
        partner: Option<String>,
        /// What leaked, to whom, the evidence
        #[arg(long)]
        details: String,
    },
    /// Decide on a recorded leak: keep the date, move it (--to), or break the embargo now
    Decide {
        /// The leak's ID
        leak: i64,
        /// keep, move or break
        #[arg(value_parser = ["keep", "move", "break"])]
        decision: String,
        /// The new instant, for move (RFC 3339)
        #[arg(long)]
        to: Option<String>,
        /// Confirm a Friday, Saturday or Sunday, for move
        #[arg(long)]
        confirm_day: bool,
    },
    /// Break a report's embargo now: every partner is told at once
    Break {
        /// Reference ID
        id: String,
        /// Why
        #[arg(long)]
        reason: String,
    },
    /// Lift a report's embargo (it is disclosed): every partner is told
    Lift {
        /// Reference ID
        id: String,
    },
    /// Pre-announce a report's disclosure date and severity in public (nothing else), or withdraw that
    Announce {
        /// Reference ID
        id: String,
        /// Withdraw the pre-announcement
        #[arg(long)]
        withdraw: bool,
    },
}
