//! Multi-row inserts: many rows of a table in as few statements as the
//! parameter and size limits allow. The tables' modules use it for their bulk
//! writes (a directory sync batch), next to their single-row writes.

use super::Write;
pub use super::query::IDS_PER_STATEMENT;

/// Most bound values per statement (SQLite allows 32766, PostgreSQL 65535).
const MAX_PARAMS: usize = 16_000;
/// Most bytes of a statement's messages (bound values, SQL text). sqlx 0.9.0
/// does not set TCP_NODELAY, and over TLS (`sslmode=prefer` with a server
/// that has `ssl = on`) each 16 KiB record is its own write: with a larger
/// message, the records after the first wait under Nagle's algorithm for the
/// server's delayed ACK, about 40 ms per statement. Smaller statements go out
/// at once.
const MAX_STATEMENT_BYTES: usize = 15 * 1024;
/// One bound value of a multi-row insert.
pub enum Arg {
    Text(String),
    Opt(Option<String>),
    Int(i64),
}

impl Arg {
    /// Bytes on the wire in a bind message (length prefix included).
    fn size(&self) -> usize {
        // Length prefix and format code.
        6 + match self {
            Arg::Text(s) | Arg::Opt(Some(s)) => s.len(),
            Arg::Opt(None) => 0,
            Arg::Int(_) => 8,
        }
    }
}

/// A row of a multi-row insert: its values in column order.
pub type ArgRow = Vec<Arg>;

/// `INSERT INTO {head} VALUES (...), (...) {tail}` in as few statements as the
/// parameter and size limits allow; `head` is the table and its columns,
/// `table (a, b, c)`, and each row holds a value per column.
pub(crate) async fn insert_rows(
    w: &mut Write<'_>,
    head: &str,
    tail: &str,
    rows: Vec<ArgRow>,
) -> sqlx::Result<()> {
    let width = head.matches(',').count() + 1;
    // Each placeholder takes up to 8 bytes of SQL (`$16000,` and parentheses).
    let text = MAX_STATEMENT_BYTES.saturating_sub(head.len() + tail.len() + 32) / 8;
    let per = (MAX_PARAMS.min(text) / width).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut chunk: Vec<ArgRow> = Vec::new();
        let mut bytes = 0;
        while chunk.len() < per {
            let Some(next) = rows.peek() else {
                break;
            };
            let size: usize = next.iter().map(Arg::size).sum();
            if !chunk.is_empty() && bytes + size > MAX_STATEMENT_BYTES {
                break;
            }
            bytes += size;
            chunk.extend(rows.next());
        }
        let mut sql = format!("INSERT INTO {head} VALUES ");
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push(',');
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        // Only placeholders and the constant table/column names reach the SQL.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for arg in row {
                q = match arg {
                    Arg::Text(s) => q.bind(s),
                    Arg::Opt(s) => q.bind(s),
                    Arg::Int(i) => q.bind(i),
                };
            }
        }
        q.execute(w.conn()).await?;
    }
    Ok(())
}
