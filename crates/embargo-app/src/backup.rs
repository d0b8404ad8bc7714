//! Backups and restores (ADR 30).
//!
//! `create` writes one file: an [age](https://age-encryption.org) file (to X25519 recipients
//! or a passphrase) holding a tar archive:
//!
//! ```text
//! embargo-backup.json        the manifest: format, backend, when, the master key's id
//! database/embargo.db        SQLite: a consistent copy (VACUUM INTO), or
//! database/embargo.pgdump    PostgreSQL: pg_dump's custom format (one snapshot)
//! data/master.key            the master key (and data/master.key.previous during a rotation)
//! data/...                   the rest of the data directory: the audit checkpoint key and the
//!                            checkpoints, private fix repositories, the outbox
//! ```
//!
//! An operator can read it without Embargo: `age -d -i key.txt FILE | tar x`. The master key
//! travels inside, encrypted to the backup's recipient: whoever can decrypt the backup can read
//! the data, so the backup identity must be kept as carefully as the master key itself.
//!
//! It runs beside a running server: the database copy is one snapshot; the checkpoint file is
//! read before it (so every checkpoint in the backup names an entry the copy holds), the key
//! files after it and before it (their union: a rotation in between loses nothing).
//!
//! `restore` refuses a data directory or database that holds anything, unpacks the files,
//! loads the database (`pg_restore` for PostgreSQL), then opens the instance: the master key
//! must open the restored data, and the audit chain must verify.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use embargo_crypto::{KEY_FILE_NAME, Keyring, PREVIOUS_KEY_FILE_NAME};
use embargo_domain::Actor;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::{App, AppError, audit};

/// The manifest's name, the archive's first entry.
pub const MANIFEST: &str = "embargo-backup.json";
const FORMAT: &str = "embargo-backup";
const FORMAT_VERSION: u32 = 1;
const CHECKPOINTS: &str = "audit-checkpoints.jsonl";

/// How a backup is encrypted.
pub enum Encryption {
    /// To one or more age X25519 recipients (`age1...`).
    Recipients(Vec<age::x25519::Recipient>),
    /// With a passphrase (age's scrypt recipient).
    Passphrase(SecretString),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::Recipients(r) => write!(f, "Recipients({})", r.len()),
            Encryption::Passphrase(_) => f.write_str("Passphrase(..)"),
        }
    }
}

impl Encryption {
    /// From `EMBARGO_BACKUP_RECIPIENT` (one or more `age1...` recipients, separated by commas
    /// or white space) or else `EMBARGO_BACKUP_PASSPHRASE`.
    pub fn from_env() -> Result<Self, AppError> {
        if let Ok(text) = std::env::var("EMBARGO_BACKUP_RECIPIENT")
            && !text.trim().is_empty()
        {
            let recipients = text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|r| !r.is_empty())
                .map(|r| {
                    r.parse::<age::x25519::Recipient>().map_err(|e| {
                        AppError::Invalid(format!(
                            "EMBARGO_BACKUP_RECIPIENT: {r:?} is not an age recipient (age1...): {e}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Encryption::Recipients(recipients));
        }
        match std::env::var("EMBARGO_BACKUP_PASSPHRASE") {
            Ok(pass) if !pass.is_empty() => Ok(Encryption::Passphrase(SecretString::from(pass))),
            _ => Err(AppError::Invalid(
                "a backup is always encrypted: set EMBARGO_BACKUP_RECIPIENT to an age recipient (age1..., from \
                 `age-keygen`), or EMBARGO_BACKUP_PASSPHRASE"
                    .into(),
            )),
        }
    }
}

/// How a backup is decrypted.
pub enum Decryption {
    /// age identities (`AGE-SECRET-KEY-1...`), from an identity file.
    Identities(Vec<Box<dyn age::Identity + Send + Sync>>),
    /// The passphrase.
    Passphrase(SecretString),
}

impl std::fmt::Debug for Decryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decryption::Identities(i) => write!(f, "Identities({})", i.len()),
            Decryption::Passphrase(_) => f.write_str("Passphrase(..)"),
        }
    }
}

impl Decryption {
    /// From an identity file (`identity`, else `EMBARGO_BACKUP_IDENTITY`), or else
    /// `EMBARGO_BACKUP_PASSPHRASE`.
    pub fn from_env(identity: Option<&Path>) -> Result<Self, RestoreFailure> {
        let from_env = std::env::var_os("EMBARGO_BACKUP_IDENTITY").filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(path) = identity.map(Path::to_path_buf).or(from_env) {
            let file = age::IdentityFile::from_file(path.display().to_string())
                .map_err(|e| RestoreFailure::Unreadable(format!("identity file {}: {e}", path.display())))?;
            let identities = file
                .into_identities()
                .map_err(|e| RestoreFailure::Unreadable(format!("identity file {}: {e}", path.display())))?;
            return Ok(Decryption::Identities(identities));
        }
        match std::env::var("EMBARGO_BACKUP_PASSPHRASE") {
            Ok(pass) if !pass.is_empty() => Ok(Decryption::Passphrase(SecretString::from(pass))),
            _ => Err(RestoreFailure::Unreadable(
                "to decrypt the backup, give --identity FILE (or EMBARGO_BACKUP_IDENTITY) with the age identity it \
                 was encrypted to, or EMBARGO_BACKUP_PASSPHRASE"
                    .into(),
            )),
        }
    }
}

/// What a backup holds, as its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `embargo-backup`.
    pub format: String,
    /// The format's version.
    pub version: u32,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// When the backup was taken (RFC 3339).
    pub created_at: String,
    /// The Embargo version that took it.
    pub embargo_version: String,
    /// The id of the master key that seals (or, mid-rotation, will seal) the data.
    pub master_key_id: String,
    /// Older master keys included (a rotation was under way).
    pub previous_key_ids: Vec<String>,
    /// The database's entry in the archive.
    pub database: String,
    /// Files of the data directory included.
    pub files: u64,
}

/// What `create` did.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// The backup file's size.
    pub bytes: u64,
    /// Entries skipped (symbolic links, special files), by path.
    pub skipped: Vec<String>,
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(parent: &Path, prefix: &str) -> std::io::Result<Self> {
        let dir = parent.join(format!("{prefix}{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Takes an online backup of the instance into `out` (written aside and renamed into place
/// when whole, so `out` is never a partial backup), encrypted as `encryption` says.
pub async fn create(app: &App, actor: &Actor, out: &Path, encryption: Encryption) -> Result<BackupSummary, AppError> {
    let data_dir = app.config.data_dir.clone();
    {
        let mut tx = app.store.begin().await?;
        crate::authz::require(&mut tx, actor, crate::authz::Permission::ManageAccounts).await?;
        audit::record(&mut tx, app, actor, "instance.backup", "instance", &format!("backend={}", app.backend_name()))
            .await?;
        tx.commit().await?;
    }
    let scratch = Scratch::new(&data_dir, ".backup-").map_err(|e| internal(format!("{}: {e}", data_dir.display())))?;
    // 1. Checkpoints first: each names an entry committed before it was written.
    let checkpoints = match std::fs::read(data_dir.join(CHECKPOINTS)) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(internal(format!("{}: {e}", data_dir.join(CHECKPOINTS).display()))),
    };
    let keys_before = key_texts(app.store.keys());
    // 2. The database, as one snapshot.
    let (database_entry, database_file) = match app.store.backend() {
        embargo_store::Backend::Sqlite => {
            let file = scratch.0.join("embargo.db");
            app.store.vacuum_into(&file).await?;
            ("database/embargo.db", file)
        }
        embargo_store::Backend::Postgres => {
            let file = scratch.0.join("embargo.pgdump");
            let version = app.store.server_version().await?;
            pg_dump(&app.config, version, &file).await?;
            ("database/embargo.pgdump", file)
        }
    };
    // 3. The key files again: a rotation that switched meanwhile adds its new key.
    let keys_after = match Keyring::load(&data_dir, std::env::var("EMBARGO_MASTER_KEY").ok().as_deref()) {
        Ok(Some((keys, _))) => Some(key_texts(&keys)),
        _ => None,
    };
    let (current, previous) = merge_keys(keys_before, keys_after);
    let manifest = Manifest {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        backend: app.backend_name().into(),
        created_at: app.now().to_string(),
        embargo_version: env!("CARGO_PKG_VERSION").into(),
        master_key_id: current.0.clone(),
        previous_key_ids: previous.iter().map(|(id, _)| id.clone()).collect(),
        database: database_entry.into(),
        files: 0,
    };
    let skip_database = app.store.backend() == embargo_store::Backend::Sqlite;
    let sqlite_file = embargo_store::Store::sqlite_path(app.config.database_url().expose());
    let out = out.to_path_buf();
    let scratch_dir = scratch.0.clone();
    let summary = tokio::task::spawn_blocking(move || {
        write_archive(ArchiveInput {
            out: &out,
            data_dir: &data_dir,
            scratch: &scratch_dir,
            sqlite_file: if skip_database { sqlite_file } else { None },
            manifest,
            database_file: &database_file,
            checkpoints,
            current_key: current.1,
            previous_keys: previous.into_iter().map(|(_, text)| text).collect(),
            encryption,
        })
    })
    .await
    .map_err(internal)??;
    drop(scratch);
    Ok(summary)
}

/// The key id and base64 text of a keyring's current key, and of its older keys.
type KeyTexts = ((String, String), Vec<(String, String)>);

fn key_texts(keys: &Keyring) -> KeyTexts {
    let previous = keys
        .previous_base64()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| (Keyring::from_base64(l).map(|k| k.key_id()).unwrap_or_default(), l.to_owned()))
        .collect();
    ((keys.key_id(), keys.current_base64().to_string()), previous)
}

/// The newest current key, and every other key seen, once each.
fn merge_keys(before: KeyTexts, after: Option<KeyTexts>) -> ((String, String), Vec<(String, String)>) {
    let Some(after) = after else { return before };
    let current = after.0.clone();
    let mut previous: Vec<(String, String)> = Vec::new();
    for key in after.1.into_iter().chain(std::iter::once(before.0)).chain(before.1) {
        if key.0 != current.0 && !previous.iter().any(|(id, _)| *id == key.0) {
            previous.push(key);
        }
    }
    (current, previous)
}

struct ArchiveInput<'a> {
    out: &'a Path,
    data_dir: &'a Path,
    scratch: &'a Path,
    sqlite_file: Option<PathBuf>,
    manifest: Manifest,
    database_file: &'a Path,
    checkpoints: Option<Vec<u8>>,
    current_key: String,
    previous_keys: Vec<String>,
    encryption: Encryption,
}

fn write_archive(input: ArchiveInput<'_>) -> Result<BackupSummary, AppError> {
    let ArchiveInput {
        out,
        data_dir,
        scratch,
        sqlite_file,
        mut manifest,
        database_file,
        checkpoints,
        current_key,
        previous_keys,
        encryption,
    } = input;
    // The files of the data directory (walked first, so the manifest can count them).
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let skip = |path: &Path| -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let top = path.parent() == Some(data_dir);
        path == scratch
            || path == out
            || (top
                && (name == KEY_FILE_NAME
                    || name == PREVIOUS_KEY_FILE_NAME
                    || name == "master.key.lock"
                    || name == CHECKPOINTS
                    || name.starts_with(".backup-")
                    || name.starts_with(".restore-")
                    || name.starts_with(&format!(".{KEY_FILE_NAME}"))))
            || sqlite_file.as_ref().is_some_and(|db| {
                let db = db.display().to_string();
                let p = path.display().to_string();
                p == db || p.strip_prefix(&db).is_some_and(|rest| ["-wal", "-shm", "-journal"].contains(&rest))
            })
    };
    walk(data_dir, data_dir, &skip, &mut files, &mut skipped)
        .map_err(|e| internal(format!("{}: {e}", data_dir.display())))?;
    manifest.files = u64::try_from(files.len()).unwrap_or(u64::MAX) + u64::from(checkpoints.is_some());

    let partial = out
        .with_file_name(format!(".{}.partial", out.file_name().and_then(|n| n.to_str()).unwrap_or("embargo-backup")));
    let result = (|| -> Result<(), AppError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&partial).map_err(|e| internal(format!("{}: {e}", partial.display())))?;
        let encryptor = match &encryption {
            Encryption::Recipients(recipients) => {
                age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                    .map_err(internal)?
            }
            Encryption::Passphrase(pass) => age::Encryptor::with_user_passphrase(pass.clone()),
        };
        let writer = encryptor.wrap_output(BufWriter::new(file)).map_err(internal)?;
        let mut tar = tar::Builder::new(writer);
        tar.mode(tar::HeaderMode::Deterministic);
        let io = |e: std::io::Error| internal(format!("writing the backup: {e}"));
        let json = serde_json::to_vec_pretty(&manifest).map_err(internal)?;
        append_bytes(&mut tar, MANIFEST, &json, 0o600).map_err(io)?;
        let mut db = std::fs::File::open(database_file).map_err(io)?;
        tar.append_file(&manifest.database, &mut db).map_err(io)?;
        append_bytes(&mut tar, &format!("data/{KEY_FILE_NAME}"), format!("{current_key}\n").as_bytes(), 0o600)
            .map_err(io)?;
        if !previous_keys.is_empty() {
            let text: String = previous_keys.iter().map(|k| format!("{k}\n")).collect();
            append_bytes(&mut tar, &format!("data/{PREVIOUS_KEY_FILE_NAME}"), text.as_bytes(), 0o600).map_err(io)?;
        }
        if let Some(bytes) = &checkpoints {
            append_bytes(&mut tar, &format!("data/{CHECKPOINTS}"), bytes, 0o600).map_err(io)?;
        }
        for (relative, full, is_dir) in &files {
            let name = format!("data/{}", relative.display());
            if *is_dir {
                tar.append_dir(&name, full).map_err(io)?;
            } else {
                match std::fs::File::open(full) {
                    Ok(mut f) => tar.append_file(&name, &mut f).map_err(io)?,
                    // Removed since the walk (a temporary file of a running server).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
        let writer = tar.into_inner().map_err(io)?;
        let buffered = writer.finish().map_err(io)?;
        let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, out).map_err(io)?;
        if let Some(parent) = out.parent()
            && let Ok(dir) = std::fs::File::open(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })
        {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary { manifest, bytes, skipped })
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
}

type FileList = Vec<(PathBuf, PathBuf, bool)>;

fn walk(
    root: &Path,
    dir: &Path,
    skip: &dyn Fn(&Path) -> bool,
    files: &mut FileList,
    skipped: &mut Vec<String>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let kind = entry.file_type()?;
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if kind.is_dir() {
            files.push((relative, path.clone(), true));
            walk(root, &path, skip, files, skipped)?;
        } else if kind.is_file() {
            files.push((relative, path, false));
        } else {
            skipped.push(relative.display().to_string());
        }
    }
    Ok(())
}

/// The PostgreSQL URL for libpq (`pg_dump`, `pg_restore`): the password goes to
/// `PGPASSWORD` (never on a command line), and only parameters libpq knows are kept.
fn libpq_target(url: &str) -> Result<(String, Option<String>), AppError> {
    let mut parsed =
        reqwest::Url::parse(url).map_err(|e| AppError::Invalid(format!("the database URL cannot be read: {e}")))?;
    let password = parsed.password().map(|p| percent_decode(p));
    let _ = parsed.set_password(None);
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            let k = match k.as_ref() {
                "ssl-mode" => "sslmode",
                "ssl-root-cert" => "sslrootcert",
                "ssl-client-cert" => "sslcert",
                "ssl-client-key" => "sslkey",
                "application-name" => "application_name",
                other => other,
            };
            [
                "host",
                "hostaddr",
                "port",
                "dbname",
                "user",
                "sslmode",
                "sslrootcert",
                "sslcert",
                "sslkey",
                "application_name",
                "options",
                "connect_timeout",
            ]
            .contains(&k)
            .then(|| (k.to_owned(), v.into_owned()))
        })
        .collect();
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    Ok((parsed.to_string(), password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The PostgreSQL client program `name` matching the server's major version: from
/// `EMBARGO_PG_BINDIR`, else Debian's `/usr/lib/postgresql/<major>/bin`, else the `PATH`.
fn pg_program(name: &str, server_version: Option<i64>) -> PathBuf {
    if let Some(dir) = std::env::var_os("EMBARGO_PG_BINDIR") {
        return PathBuf::from(dir).join(name);
    }
    if let Some(major) = server_version.map(|v| v / 10000) {
        let candidate = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/{name}"));
        if candidate.exists() {
            return candidate;
        }
    }
    PathBuf::from(name)
}

async fn run_pg(program: PathBuf, args: Vec<String>, password: Option<String>) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&program);
    command.args(&args).stdin(std::process::Stdio::null());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().await.map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

async fn pg_dump(config: &Config, server_version: Option<i64>, file: &Path) -> Result<(), AppError> {
    let (url, password) = libpq_target(config.database_url().expose())?;
    let args = vec![
        "--format=custom".to_owned(),
        "--no-owner".to_owned(),
        "--no-privileges".to_owned(),
        format!("--file={}", file.display()),
        format!("--dbname={url}"),
    ];
    run_pg(pg_program("pg_dump", server_version), args, password).await.map_err(|e| AppError::Unavailable(e))
}

/// Why a restore failed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RestoreFailure {
    /// The target holds something already.
    #[error("{0}")]
    NotEmpty(String),
    /// The file is not a backup, or cannot be decrypted with what was given, or was altered.
    #[error("{0}")]
    Unreadable(String),
    /// The master key does not open the restored data.
    #[error("{0}")]
    KeyMismatch(String),
    /// The database cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// The restored instance does not verify (its audit chain), or anything else.
    #[error("{0}")]
    Failed(String),
}

/// What `restore` did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Audit entries verified in the restored chain.
    pub audit_entries: i64,
    /// Files written into the data directory.
    pub files: u64,
}

/// Restores `file` into the empty data directory and database of `config`.
pub async fn restore(
    config: Config,
    actor: &Actor,
    file: &Path,
    decryption: Decryption,
) -> Result<RestoreSummary, RestoreFailure> {
    let data_dir = config.data_dir.clone();
    let url = config.database_url();
    let backend = embargo_store::Backend::of_url(url.expose()).map_err(|e| RestoreFailure::Failed(e.to_string()))?;
    // 1. The targets must be empty.
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(&data_dir)
            .map_err(|e| RestoreFailure::NotEmpty(format!("{}: {e}", data_dir.display())))?;
        if entries.next().is_some() {
            return Err(RestoreFailure::NotEmpty(format!(
                "refusing to restore into {}: the data directory is not empty. Restore into a new, empty directory \
                 (--data-dir)",
                data_dir.display()
            )));
        }
    }
    let sqlite_file = embargo_store::Store::sqlite_path(url.expose());
    if let Some(db) = &sqlite_file
        && db.exists()
    {
        return Err(RestoreFailure::NotEmpty(format!(
            "refusing to restore: {} exists already. Restore into a new database",
            db.display()
        )));
    }
    let mut server_version = None;
    if backend == embargo_store::Backend::Postgres {
        let store = embargo_store::Store::connect(url.expose(), std::sync::Arc::new(Keyring::generate()))
            .await
            .map_err(|e| RestoreFailure::Unavailable(e.to_string()))?;
        let tables = store.table_count().await.map_err(|e| RestoreFailure::Unavailable(e.to_string()));
        server_version = store.server_version().await.ok().flatten();
        store.close().await;
        if tables? > 0 {
            return Err(RestoreFailure::NotEmpty(format!(
                "refusing to restore into {}: the database is not empty. Create a new, empty database \
                 (createdb) and give its URL with --database-url",
                config.database_place()
            )));
        }
    }
    // 2. Unpack into a directory beside the target, moved into place at the end.
    let parent = data_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| RestoreFailure::Failed(format!("{}: {e}", parent.display())))?;
    let name = data_dir.file_name().and_then(|n| n.to_str()).unwrap_or("data").to_owned();
    let staging = Scratch::new(&parent, &format!(".{name}.restore-"))
        .map_err(|e| RestoreFailure::Failed(format!("{}: {e}", parent.display())))?;
    let staging_dir = staging.0.clone();
    let source = file.to_path_buf();
    let (manifest, files, database) = tokio::task::spawn_blocking(move || unpack(&source, &staging_dir, decryption))
        .await
        .map_err(|e| RestoreFailure::Failed(e.to_string()))??;
    if manifest.backend != backend.as_str() {
        return Err(RestoreFailure::Unreadable(format!(
            "this backup is of a {} instance; restore it into a {} database (--database-url)",
            manifest.backend, manifest.backend
        )));
    }
    // 3. The database.
    match backend {
        embargo_store::Backend::Sqlite => {
            let target = sqlite_file.clone().unwrap_or_else(|| data_dir.join("embargo.db"));
            let in_staging = target.strip_prefix(&data_dir).ok().map(|rel| staging.0.join(rel));
            let place = in_staging.clone().unwrap_or(target.clone());
            if let Some(dir) = place.parent() {
                std::fs::create_dir_all(dir).map_err(|e| RestoreFailure::Failed(format!("{}: {e}", dir.display())))?;
            }
            std::fs::rename(&database, &place)
                .map_err(|e| RestoreFailure::Failed(format!("{}: {e}", place.display())))?;
        }
        embargo_store::Backend::Postgres => {
            let (target, password) = libpq_target(url.expose()).map_err(|e| RestoreFailure::Failed(e.to_string()))?;
            let args = vec![
                "--no-owner".to_owned(),
                "--no-privileges".to_owned(),
                "--exit-on-error".to_owned(),
                "--single-transaction".to_owned(),
                format!("--dbname={target}"),
                database.display().to_string(),
            ];
            run_pg(pg_program("pg_restore", server_version), args, password).await.map_err(RestoreFailure::Failed)?;
            let _ = std::fs::remove_file(&database);
        }
    }
    // 4. The data directory into place.
    if data_dir.exists() {
        std::fs::remove_dir(&data_dir).map_err(|e| RestoreFailure::Failed(format!("{}: {e}", data_dir.display())))?;
    }
    std::fs::rename(&staging.0, &data_dir)
        .map_err(|e| RestoreFailure::Failed(format!("{}: {e}", data_dir.display())))?;
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    // 5. The instance must open with its key, its sealed data must open, its chain verify.
    let (app, _) = App::open_instance(config, std::sync::Arc::new(crate::SystemClock), crate::OpenMode::Existing)
        .await
        .map_err(|e| match e {
            crate::OpenError::Config(message) => RestoreFailure::KeyMismatch(format!(
                "the restored data cannot be opened with the master key in use: {message}"
            )),
            other => RestoreFailure::Failed(other.to_string()),
        })?;
    let opened = crate::openpgp::instance_key(&app).await;
    if let Err(e) = opened {
        app.store.close().await;
        return Err(RestoreFailure::KeyMismatch(format!(
            "the master key in use (id {}) does not open the restored data ({e}); the backup was made with key {}. \
             Use the backup's own key (the restored master.key, unless EMBARGO_MASTER_KEY overrides it)",
            app.store.keys().key_id(),
            manifest.master_key_id
        )));
    }
    let verified = embargo_store::audit::verify(&app.store).await.map_err(|e| RestoreFailure::Failed(e.to_string()))?;
    let entries = match verified {
        embargo_store::audit::Verification::Intact(n) => n,
        embargo_store::audit::Verification::Broken(err) => {
            app.store.close().await;
            return Err(RestoreFailure::Failed(format!("the restored audit trail does not verify: {err}")));
        }
    };
    let mut tx = app.store.begin().await.map_err(|e| RestoreFailure::Failed(e.to_string()))?;
    audit::record(
        &mut tx,
        &app,
        actor,
        "instance.restore",
        "instance",
        &format!("backup_created_at={} backend={}", manifest.created_at, manifest.backend),
    )
    .await
    .map_err(|e| RestoreFailure::Failed(e.to_string()))?;
    tx.commit().await.map_err(|e| RestoreFailure::Failed(e.to_string()))?;
    app.store.close().await;
    Ok(RestoreSummary { manifest, audit_entries: entries, files })
}

/// Decrypts and unpacks the archive into `dir`; returns the manifest, the number of data
/// files, and where the database entry was written (inside `dir`, not yet in place).
fn unpack(source: &Path, dir: &Path, decryption: Decryption) -> Result<(Manifest, u64, PathBuf), RestoreFailure> {
    let unreadable = |what: String| RestoreFailure::Unreadable(what);
    let file = std::fs::File::open(source).map_err(|e| unreadable(format!("{}: {e}", source.display())))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file))
        .map_err(|e| unreadable(format!("{} is not an age-encrypted backup: {e}", source.display())))?;
    let reader: Box<dyn Read> = match (&decryption, decryptor.is_scrypt()) {
        (Decryption::Passphrase(pass), true) => {
            let identity = age::scrypt::Identity::new(pass.clone());
            Box::new(decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).map_err(|e| {
                unreadable(format!("cannot decrypt {} with EMBARGO_BACKUP_PASSPHRASE: {e}", source.display()))
            })?)
        }
        (Decryption::Identities(ids), false) => Box::new(
            decryptor
                .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
                .map_err(|e| unreadable(format!("cannot decrypt {} with the identity given: {e}", source.display())))?,
        ),
        (Decryption::Passphrase(_), false) => {
            return Err(unreadable(format!(
                "{} is encrypted to an age recipient, not a passphrase: give its identity with --identity FILE \
                 (or EMBARGO_BACKUP_IDENTITY)",
                source.display()
            )));
        }
        (Decryption::Identities(_), true) => {
            return Err(unreadable(format!(
                "{} is encrypted with a passphrase: set EMBARGO_BACKUP_PASSPHRASE",
                source.display()
            )));
        }
    };
    let altered = |e: std::io::Error| {
        unreadable(format!("{} is damaged or was altered (reading it failed: {e})", source.display()))
    };
    let mut archive = tar::Archive::new(reader);
    let mut manifest: Option<Manifest> = None;
    let mut database = None;
    let mut files = 0;
    for entry in archive.entries().map_err(altered)? {
        let mut entry = entry.map_err(altered)?;
        let path = entry.path().map_err(altered)?.into_owned();
        let kind = entry.header().entry_type();
        // Hostile archives are normal: only plain relative paths, only files and directories.
        if path.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(unreadable(format!(
                "{} holds a path outside the backup: {}",
                source.display(),
                path.display()
            )));
        }
        let text = path.to_string_lossy().into_owned();
        if manifest.is_none() {
            if text != MANIFEST {
                return Err(unreadable(format!("{} is not an Embargo backup (no manifest)", source.display())));
            }
            let mut json = Vec::new();
            entry.by_ref().take(1 << 20).read_to_end(&mut json).map_err(altered)?;
            let found: Manifest = serde_json::from_slice(&json)
                .map_err(|e| unreadable(format!("{}: the manifest cannot be read: {e}", source.display())))?;
            if found.format != FORMAT || found.version != FORMAT_VERSION {
                return Err(unreadable(format!(
                    "{}: format {} version {} is not one this Embargo restores",
                    source.display(),
                    found.format,
                    found.version
                )));
            }
            manifest = Some(found);
            continue;
        }
        let Some(found) = &manifest else { unreachable!("set above") };
        let target = if text == found.database {
            let target = dir.join(format!(".database-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("db")));
            database = Some(target.clone());
            target
        } else if let Ok(rest) = path.strip_prefix("data") {
            if rest.as_os_str().is_empty() {
                continue;
            }
            dir.join(rest)
        } else {
            return Err(unreadable(format!("{} holds an unexpected entry: {text}", source.display())));
        };
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target)
                    .map_err(|e| RestoreFailure::Failed(format!("{}: {e}", target.display())))?;
                set_private(&target, 0o700);
            }
            tar::EntryType::Regular | tar::EntryType::GNUSparse | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| RestoreFailure::Failed(format!("{}: {e}", parent.display())))?;
                }
                let mode = entry.header().mode().unwrap_or(0o600);
                let mut out = std::fs::File::create(&target)
                    .map_err(|e| RestoreFailure::Failed(format!("{}: {e}", target.display())))?;
                std::io::copy(&mut entry, &mut out).map_err(altered)?;
                out.sync_all().map_err(|e| RestoreFailure::Failed(format!("{}: {e}", target.display())))?;
                // Owner only, whatever the archive says (the executable bit of hooks kept).
                set_private(&target, (mode & 0o700) | 0o600);
                if text != found.database {
                    files += 1;
                }
            }
            other => {
                return Err(unreadable(format!(
                    "{} holds an entry of a kind a backup never has ({other:?}): {text}",
                    source.display()
                )));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| unreadable(format!("{} is empty", source.display())))?;
    let database = database.ok_or_else(|| unreadable(format!("{} holds no database", source.display())))?;
    if !dir.join(KEY_FILE_NAME).exists() && std::env::var_os("EMBARGO_MASTER_KEY").is_none() {
        return Err(RestoreFailure::KeyMismatch(format!(
            "{} holds no master key and EMBARGO_MASTER_KEY is not set: the data cannot be opened",
            source.display()
        )));
    }
    Ok((manifest, files, database))
}

fn set_private(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_gets_no_password_and_only_its_own_parameters() {
        let (url, password) =
            libpq_target("postgres://embargo:s%40cret@db.example:5433/embargo?host=/run/pg&ssl-mode=require&statement-cache-capacity=0")
                .unwrap();
        assert_eq!(password.as_deref(), Some("s@cret"));
        assert!(!url.contains("cret"), "{url}");
        assert!(url.contains("host=%2Frun%2Fpg") && url.contains("sslmode=require"), "{url}");
        assert!(!url.contains("statement-cache"), "{url}");
    }

    #[test]
    fn merged_keys_keep_the_newest_current_and_every_other_once() {
        let a = ("a".to_owned(), "A".to_owned());
        let b = ("b".to_owned(), "B".to_owned());
        let (current, previous) = merge_keys((a.clone(), vec![]), Some((b.clone(), vec![a.clone()])));
        assert_eq!(current, b);
        assert_eq!(previous, vec![a.clone()]);
        let (current, previous) = merge_keys((a.clone(), vec![]), None);
        assert_eq!((current, previous), (a, vec![]));
    }
}
