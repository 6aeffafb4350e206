//! # Account state and the audit log: low volume, so both backends run the same SQL.
//!
//! Disabling an account and changing a password are administrative acts; the audit log is
//! append-only (triggers refuse updates and deletes) and searched by actor, target and time.

use crate::{
    audit_from_row, is_unique_violation, user_from_row, AuditRow, Error, Result, Store, UserRow,
};
use tagwatch_model::{AuditEntry, Role, User, UserId};

/// Which audit entries to list: all of them by default, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries with ids above this.
    pub after: i64,
    pub actor: Option<String>,
    /// The target as logged, e.g. `tag:500`.
    pub target: Option<String>,
    /// From this time (inclusive), ms.
    pub from_ms: Option<i64>,
    /// Before this time (exclusive), ms.
    pub to_ms: Option<i64>,
}

impl Store {
    /// Appends to the audit log; returns the entry's id.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        let id = on_backend!(self, |pool, sql| {
            sqlx::query_scalar::<_, i64>(&sql(
                "INSERT INTO audit (at, actor, role, action, target, purpose, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            ))
            .bind(entry.at_ms)
            .bind(&entry.actor)
            .bind(entry.role.as_str())
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(&entry.purpose)
            .bind(&entry.outcome)
            .fetch_one(pool)
            .await?
        });
        Ok(id)
    }

    /// Appends several entries in one transaction, in order: one durable commit for all (the
    /// API's audit writer groups the entries of concurrent queries this way).
    pub async fn append_audits(&self, entries: &[AuditEntry]) -> Result<()> {
        on_backend!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            for entry in entries {
                sqlx::query(&sql(
                    "INSERT INTO audit (at, actor, role, action, target, purpose, outcome) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                ))
                .bind(entry.at_ms)
                .bind(&entry.actor)
                .bind(entry.role.as_str())
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.purpose)
                .bind(&entry.outcome)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Audit entries matching `filter`, oldest first, at most `limit`.
    pub async fn audit(&self, filter: &AuditFilter, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT id, at, actor, role, action, target, purpose, outcome FROM audit \
                 WHERE id > $1 AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR target = $3) \
                 AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) \
                 ORDER BY id LIMIT $6",
            ))
            .bind(filter.after)
            .bind(filter.actor.as_deref())
            .bind(filter.target.as_deref())
            .bind(filter.from_ms)
            .bind(filter.to_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(audit_from_row).collect()
    }

    /// Audit entries with `id > after`, oldest first.
    pub async fn audit_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let filter = AuditFilter {
            after,
            ..AuditFilter::default()
        };
        self.audit(&filter, limit).await
    }

    /// Disables an account (its tokens stop working at once, its logins are refused) or, with
    /// `None`, enables it again. False if there is no such user.
    pub async fn set_disabled(&self, user: UserId, disabled_at_ms: Option<i64>) -> Result<bool> {
        let done = on_backend!(self, |pool, sql| {
            sqlx::query(&sql("UPDATE users SET disabled_at = $1 WHERE id = $2"))
                .bind(disabled_at_ms)
                .bind(user.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Whether an account is disabled (false for no such user).
    pub async fn is_disabled(&self, user: UserId) -> Result<bool> {
        let row: Option<(Option<i64>,)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT disabled_at FROM users WHERE id = $1"))
                .bind(user.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some_and(|(at,)| at.is_some()))
    }

    /// Revokes every live token of `user` but the one hashed `keep`.
    pub async fn revoke_other_tokens(
        &self,
        user: UserId,
        keep: &[u8; 32],
        now_ms: i64,
    ) -> Result<u64> {
        let revoked = on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND hash <> $3 \
                 AND revoked_at IS NULL",
            ))
            .bind(now_ms)
            .bind(user.0)
            .bind(keep.as_slice())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(revoked)
    }

    /// Replaces an account's password hash.
    pub async fn set_password_hash(&self, user: UserId, password_hash: &str) -> Result<bool> {
        let done = on_backend!(self, |pool, sql| {
            sqlx::query(&sql("UPDATE users SET password_hash = $1 WHERE id = $2"))
                .bind(password_hash)
                .bind(user.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }
}

impl Store {
    pub async fn insert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<UserId> {
        on_backend!(self, writer, |pool, sql| {
            let result = sqlx::query_scalar::<_, i64>(&sql("INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING id"))
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now_ms)
            .fetch_one(pool)
            .await;
            match result {
                Ok(id) => Ok(UserId(id)),
                Err(e) if is_unique_violation(&e) => Err(Error::UserExists(username.to_owned())),
                Err(e) => Err(e.into()),
            }
        })
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<UserRow> = sqlx::query_as(&sql(
                "SELECT id, username, password_hash, role FROM users WHERE username = $1",
            ))
            .bind(username)
            .fetch_optional(pool)
            .await?;
            row.map(user_from_row).transpose()
        })
    }

    pub async fn insert_token(
        &self,
        hash: &[u8; 32],
        user: UserId,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            sqlx::query(&sql("INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"))
            .bind(hash.as_slice())
            .bind(user.0)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The user a token belongs to, if it is neither expired nor revoked.
    pub async fn token_user(&self, hash: &[u8; 32], now_ms: i64) -> Result<Option<User>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<UserRow> = sqlx::query_as(&sql(
                "SELECT u.id, u.username, u.password_hash, u.role FROM tokens t \
                 JOIN users u ON u.id = t.user_id \
                 WHERE t.hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 \
                 AND u.disabled_at IS NULL",
            ))
            .bind(hash.as_slice())
            .bind(now_ms)
            .fetch_optional(pool)
            .await?;
            row.map(user_from_row).transpose()
        })
    }

    pub async fn revoke_token(&self, hash: &[u8; 32], now_ms: i64) -> Result<bool> {
        on_backend!(self, writer, |pool, sql| {
            let done = sqlx::query(&sql(
                "UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
            ))
            .bind(now_ms)
            .bind(hash.as_slice())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    pub async fn revoke_tokens_of(&self, user: UserId, now_ms: i64) -> Result<u64> {
        on_backend!(self, writer, |pool, sql| {
            let done = sqlx::query(&sql(
                "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            ))
            .bind(now_ms)
            .bind(user.0)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
