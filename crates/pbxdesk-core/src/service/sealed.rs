//! Secrets at rest are bound to their row: the AAD of each sealed column names its purpose, its
//! table, its row's key and its column (`secret::Row`), so a database writer cannot move one
//! device's password into another device's row, or replay an old render as the previous one.
//! A write stores a value sealed for its purpose (the row's id may not exist yet) and binds it
//! to its row in the same transaction; workspaces from before row binding are bound once, at
//! open. Every read opens with the row, so a blob that was not bound, or was moved, fails.

use super::Workspace;
use crate::error::{Error, Result};
use crate::secret::{is_row_sealed, Cipher, Purpose, Row};
use crate::store::{meta, sealed, Store};
use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyConnection;

/// A sealed column: its table, the column holding the row's key, and its purpose.
struct Sealed {
    table: &'static str,
    key: &'static str,
    column: &'static str,
    purpose: Purpose,
}

const SEALED: [Sealed; 8] = [
    Sealed {
        table: "devices",
        key: "id",
        column: "sip_password",
        purpose: Purpose::SipPassword,
    },
    Sealed {
        table: "users",
        key: "id",
        column: "voicemail_pin",
        purpose: Purpose::VoicemailPin,
    },
    Sealed {
        table: "trunks",
        key: "id",
        column: "password",
        purpose: Purpose::TrunkPassword,
    },
    Sealed {
        table: "pbxes",
        key: "id",
        column: "ssh_secret",
        purpose: Purpose::ConnectionPassword,
    },
    Sealed {
        table: "pbxes",
        key: "id",
        column: "ami_secret",
        purpose: Purpose::ConnectionPassword,
    },
    Sealed {
        table: "pbxes",
        key: "id",
        column: "db_password",
        purpose: Purpose::ConnectionPassword,
    },
    Sealed {
        table: "pbx_renders",
        key: "pbx_id",
        column: "rendered",
        purpose: Purpose::Render,
    },
    Sealed {
        table: "pbx_renders",
        key: "pbx_id",
        column: "previous",
        purpose: Purpose::Render,
    },
];

impl Sealed {
    fn at(&self) -> sealed::Column {
        sealed::Column {
            table: self.table,
            column: self.column,
            key: self.key,
        }
    }
}

fn column(table: &str, column: &str) -> Result<&'static Sealed> {
    SEALED
        .iter()
        .find(|s| s.table == table && s.column == column)
        .ok_or_else(|| Error::Store(format!("{table}.{column} is not a sealed column")))
}

/// Re-seals one stored value for its row (unchanged if it is bound already).
fn bound(cipher: &Cipher, s: &Sealed, id: i64, blob: &[u8]) -> Result<Option<Vec<u8>>> {
    if is_row_sealed(blob) {
        return Ok(None);
    }
    let plain = cipher.open(s.purpose, blob)?;
    let row = Row {
        table: s.table,
        id,
        column: s.column,
    };
    Ok(Some(cipher.seal_row(
        s.purpose,
        row,
        plain.expose_secret(),
    )?))
}

async fn store_bound(conn: &mut AnyConnection, s: &Sealed, id: i64, blob: Vec<u8>) -> Result<()> {
    sealed::write(conn, s.at(), id, blob).await
}

impl Workspace {
    /// Binds to their row the secrets a write just stored in row `id` of `table` (call it in
    /// the write's transaction, after the row exists).
    pub(crate) async fn bind_row_secrets(
        &self,
        conn: &mut AnyConnection,
        table: &str,
        id: i64,
    ) -> Result<()> {
        for s in SEALED.iter().filter(|s| s.table == table) {
            let blob = sealed::read(&mut *conn, s.at(), id).await?;
            if let Some(b) = blob.and_then(|b| bound(&self.cipher, s, id, &b).transpose()) {
                store_bound(conn, s, id, b?).await?;
            }
        }
        Ok(())
    }

    /// Seals `plaintext` for `table.column` of row `id` and stores it there: one write, for a
    /// row made in the same transaction with a placeholder (the bulk import).
    pub(crate) async fn put_row_secret(
        &self,
        conn: &mut AnyConnection,
        table: &str,
        col: &str,
        id: i64,
        plaintext: &str,
    ) -> Result<()> {
        let s = column(table, col)?;
        let blob = self.seal_for_row(table, col, id, plaintext)?;
        store_bound(conn, s, id, blob).await
    }

    /// Seals `plaintext` for `table.column` of row `id` (when the row's key is known).
    pub(crate) fn seal_for_row(
        &self,
        table: &str,
        col: &str,
        id: i64,
        plaintext: &str,
    ) -> Result<Vec<u8>> {
        let s = column(table, col)?;
        self.cipher.seal_row(
            s.purpose,
            Row {
                table: s.table,
                id,
                column: s.column,
            },
            plaintext,
        )
    }

    /// Opens what `table.column` of row `id` holds: only a value sealed for that very row.
    pub(crate) fn unseal(
        &self,
        table: &str,
        col: &str,
        id: i64,
        sealed: &[u8],
    ) -> Result<SecretString> {
        let s = column(table, col)?;
        self.cipher.open_row(
            s.purpose,
            Row {
                table: s.table,
                id,
                column: s.column,
            },
            sealed,
        )
    }
}

/// Binds every secret of a workspace from before row binding, once (one transaction; the
/// marker is written in it).
pub(crate) async fn bind_all_once(store: &Store, cipher: &Cipher) -> Result<()> {
    const MARK: &str = "secrets_bound_to_rows";
    let done = meta::get(store.pool(), MARK).await?;
    if done.is_some() {
        return Ok(());
    }
    let mut w = store.begin_write().await?;
    for s in &SEALED {
        let rows = sealed::all(&mut *w.tx, s.at()).await?;
        for (id, blob) in rows {
            if let Some(b) = bound(cipher, s, id, &blob)? {
                store_bound(&mut w.tx, s, id, b).await?;
            }
        }
    }
    meta::put_if_absent(&mut *w.tx, MARK, "1").await?;
    w.commit().await
}
