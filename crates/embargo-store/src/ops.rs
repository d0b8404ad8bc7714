//! Operations on the whole database: a consistent copy for backups, whether a database is
//! empty (a restore's target), the state of migrations (`embargo doctor`), and re-wrapping
//! every sealed value under a new master key (ADR 30).

use sqlx::Row;

use crate::{Backend, Store, StoreError, Tx};

/// Applied and known migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions recorded as applied.
    pub applied: Vec<i64>,
    /// Versions this build knows, with their descriptions.
    pub known: Vec<(i64, String)>,
    /// Applied versions whose run failed (sqlx records `success = false`).
    pub failed: Vec<i64>,
}

impl MigrationStatus {
    /// Known migrations not applied yet.
    pub fn pending(&self) -> Vec<(i64, String)> {
        self.known.iter().filter(|(v, _)| !self.applied.contains(v)).cloned().collect()
    }

    /// Applied migrations this build does not know (the database is newer than the binary).
    pub fn unknown(&self) -> Vec<i64> {
        self.applied.iter().filter(|v| !self.known.iter().any(|(k, _)| k == *v)).copied().collect()
    }
}

/// A column holding sealed values, and the table it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedColumn {
    /// The table.
    pub table: String,
    /// The column (its name ends in `_enc`).
    pub column: String,
}

/// What one batch of [`rewrap_batch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Values found under an older key.
    pub found: u64,
    /// Values written back under the current key (a value changed meanwhile is skipped; the
    /// next pass sees it again).
    pub written: u64,
    /// Where the next batch starts (`None`: the column is done for this pass).
    pub next: Option<String>,
}

impl Store {
    /// Writes a consistent copy of the SQLite database to `path` (`VACUUM INTO`, which reads
    /// one snapshot while writers go on). SQLite only.
    pub async fn vacuum_into(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Corrupt("VACUUM INTO is for SQLite".into()));
        }
        let path = path.to_str().ok_or_else(|| StoreError::Corrupt("the path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.pool).await?;
        Ok(())
    }

    /// The number of tables in the database (its schema, for PostgreSQL): 0 for an empty one.
    pub async fn table_count(&self) -> Result<i64, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'view')",
            Backend::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        };
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }

    /// PostgreSQL's `server_version_num` (such as 150010); `None` for SQLite.
    pub async fn server_version(&self) -> Result<Option<i64>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let text: String =
            sqlx::query_scalar("SELECT current_setting('server_version_num')").fetch_one(&self.pool).await?;
        Ok(text.trim().parse().ok())
    }

    /// The database server's clock minus ours, in milliseconds (PostgreSQL; `None` for SQLite,
    /// which has no clock of its own).
    pub async fn clock_offset_ms(&self) -> Result<Option<i64>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let before = jiff::Timestamp::now().as_millisecond();
        let theirs: i64 = sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
            .fetch_one(&self.pool)
            .await?;
        let after = jiff::Timestamp::now().as_millisecond();
        Ok(Some(theirs - (before + after) / 2))
    }

    /// Which migrations are applied and which this build knows. Reads only.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &crate::SQLITE_MIGRATIONS,
            Backend::Postgres => &crate::POSTGRES_MIGRATIONS,
        };
        let known = migrator.iter().map(|m| (m.version, m.description.to_string())).collect();
        let has_table = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let count: i64 = sqlx::query_scalar(has_table).fetch_one(&self.pool).await?;
        let (mut applied, mut failed) = (Vec::new(), Vec::new());
        if count > 0 {
            let rows = sqlx::query("SELECT version, CASE WHEN success THEN 1 ELSE 0 END AS ok FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                let version: i64 = row.try_get("version")?;
                let ok: i32 = row.try_get("ok")?;
                if ok == 1 { applied.push(version) } else { failed.push(version) }
            }
        }
        applied.sort_unstable();
        Ok(MigrationStatus { applied, known, failed })
    }
}

/// Every column that holds sealed values (named `*_enc`), from the database's catalogue.
pub async fn sealed_columns(tx: &mut Tx) -> Result<Vec<SealedColumn>, StoreError> {
    let sql = match tx.backend {
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name LIKE '%\\_enc' ESCAPE '\\' ORDER BY m.name, p.name"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name LIKE '%\\_enc' ESCAPE '\\' \
             ORDER BY table_name, column_name"
        }
    };
    let rows = sqlx::query(sql).fetch_all(tx.conn()).await?;
    rows.iter()
        .map(|row| Ok(SealedColumn { table: row.try_get("t")?, column: row.try_get("c")? }))
        .collect::<Result<Vec<_>, StoreError>>()
        .map(|cols| cols.into_iter().filter(|c| is_identifier(&c.table) && is_identifier(&c.column)).collect())
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Re-wraps, under the keyring's current master key, up to `limit` values of one sealed
/// column that are sealed under an older key, starting after row position `after` (a rowid
/// on SQLite, a `ctid` on PostgreSQL; `None` from the start). Each value is written back
/// only if it is still the one read (a concurrent change wins, and is under the current key
/// already). Runs in the caller's transaction.
pub async fn rewrap_batch(
    tx: &mut Tx,
    column: &SealedColumn,
    after: Option<&str>,
    limit: i64,
) -> Result<Rewrapped, StoreError> {
    let (table, col) = (&column.table, &column.column);
    if !is_identifier(table) || !is_identifier(col) {
        return Err(StoreError::Corrupt(format!("not a column name: {table}.{col}")));
    }
    let current = hex::decode(tx.keys.key_id()).map_err(|_| StoreError::Corrupt("key id".into()))?;
    let select = match tx.backend {
        Backend::Sqlite => format!(
            "SELECT CAST(rowid AS TEXT) AS pos, {col} AS v FROM {table} \
             WHERE rowid > CAST($1 AS INTEGER) AND {col} IS NOT NULL AND substr({col}, 2, 4) <> $2 \
             ORDER BY rowid LIMIT $3"
        ),
        Backend::Postgres => format!(
            "SELECT CAST(ctid AS TEXT) AS pos, {col} AS v FROM {table} \
             WHERE ctid > CAST($1 AS tid) AND {col} IS NOT NULL AND substring({col} from 2 for 4) <> $2 \
             ORDER BY ctid LIMIT $3"
        ),
    };
    let start = after.map(str::to_owned).unwrap_or_else(|| match tx.backend {
        Backend::Sqlite => "-9223372036854775808".to_owned(),
        Backend::Postgres => "(0,0)".to_owned(),
    });
    // The names come from the catalogue and are checked to be plain identifiers above.
    let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
        .bind(start)
        .bind(current)
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
    let mut out = Rewrapped::default();
    let update = match tx.backend {
        Backend::Sqlite => format!("UPDATE {table} SET {col} = $1 WHERE rowid = CAST($2 AS INTEGER) AND {col} = $3"),
        Backend::Postgres => format!("UPDATE {table} SET {col} = $1 WHERE ctid = CAST($2 AS tid) AND {col} = $3"),
    };
    for row in &rows {
        let pos: String = row.try_get("pos")?;
        let value: Vec<u8> = row.try_get("v")?;
        out.found += 1;
        if let Some(new) = tx.keys.rewrap(&value)? {
            let done = sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                .bind(new)
                .bind(&pos)
                .bind(&value)
                .execute(tx.conn())
                .await?;
            out.written += done.rows_affected();
        }
        out.next = Some(pos);
    }
    if rows.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
        out.next = None;
    }
    Ok(out)
}

/// Re-wraps the sealed instance secrets (`instance_meta`, stored hex-encoded) that are under
/// an older key; returns (found, written).
pub async fn rewrap_meta(tx: &mut Tx) -> Result<(u64, u64), StoreError> {
    let rows = sqlx::query("SELECT key, value FROM instance_meta").fetch_all(tx.conn()).await?;
    let (mut found, mut written) = (0, 0);
    for row in rows {
        let key: String = row.try_get("key")?;
        let value: String = row.try_get("value")?;
        let Ok(bytes) = hex::decode(&value) else { continue };
        // Only a value in the sealed format under a key this keyring holds is sealed.
        let Some(id) = embargo_crypto::Keyring::key_id_of(&bytes) else { continue };
        if id == tx.keys.key_id() || !tx.keys.knows(&id) {
            continue;
        }
        found += 1;
        if let Some(new) = tx.keys.rewrap(&bytes)? {
            let done = sqlx::query("UPDATE instance_meta SET value = $1 WHERE key = $2 AND value = $3")
                .bind(hex::encode(new))
                .bind(&key)
                .bind(&value)
                .execute(tx.conn())
                .await?;
            written += done.rows_affected();
        }
    }
    Ok((found, written))
}
