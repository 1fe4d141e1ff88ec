//! What every table's functions share: a statement is its SQL and a tuple of
//! arguments (bound to `$1`, `$2`, ... in order), run in one call; rows come
//! back as `#[derive(sqlx::FromRow)]` types, with the columns whose stored
//! form differs from the served one (0/1 flags, JSON text, names of enum
//! values) read through [`Flag`] and [`Text`].

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{Any, Arguments as _, Encode, FromRow, Result, SqlSafeStr, Type};

use super::{Conn, Write};
use crate::model::{LoginType, UserStatus};
use crate::provisioner::{JobType, Transition};

/// The text of a statement built from constant parts (column lists, joins):
/// `format!` arguments, which must be constants of the store, never input.
macro_rules! sql {
    ($($fmt:tt)*) => {
        sqlx::AssertSqlSafe(format!($($fmt)*))
    };
}
pub(crate) use sql;

/// The arguments of one statement, in the order of their placeholders: a
/// tuple of values, or a slice of one type (an `IN (...)` list).
pub trait Args: Send {
    fn into_args(self) -> Result<AnyArguments, BoxDynError>;
}

impl Args for () {
    fn into_args(self) -> Result<AnyArguments, BoxDynError> {
        Ok(AnyArguments::default())
    }
}

macro_rules! tuple_args {
    ($($v:ident),+) => {
        impl<'q, $($v),+> Args for ($($v,)+)
        where
            $($v: Encode<'q, Any> + Type<Any> + Send,)+
        {
            #[allow(non_snake_case, reason = "the type names are the values")]
            fn into_args(self) -> Result<AnyArguments, BoxDynError> {
                let ($($v,)+) = self;
                let mut args = AnyArguments::default();
                $(args.add($v)?;)+
                Ok(args)
            }
        }
    };
}

tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);
tuple_args!(A, B, C, D, E, F, G, H, I);
tuple_args!(A, B, C, D, E, F, G, H, I, J);
tuple_args!(A, B, C, D, E, F, G, H, I, J, K);
tuple_args!(A, B, C, D, E, F, G, H, I, J, K, L);
tuple_args!(A, B, C, D, E, F, G, H, I, J, K, L, M);
tuple_args!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);

impl<'q, T> Args for &'q [T]
where
    T: Sync,
    &'q T: Encode<'q, Any> + Type<Any> + Send,
{
    fn into_args(self) -> Result<AnyArguments, BoxDynError> {
        let mut args = AnyArguments::default();
        for value in self {
            args.add(value)?;
        }
        Ok(args)
    }
}

fn bound(args: impl Args) -> Result<AnyArguments> {
    args.into_args().map_err(sqlx::Error::Encode)
}

/// The text of a statement: a constant, or [`sql!`] of constants.
pub trait Sql: SqlSafeStr + Send {}
impl<T: SqlSafeStr + Send> Sql for T {}

/// What a row of a query is read as: a `#[derive(sqlx::FromRow)]` type, or
/// a tuple of columns.
pub trait Row: for<'r> FromRow<'r, AnyRow> + Send + Unpin {}
impl<T: for<'r> FromRow<'r, AnyRow> + Send + Unpin> Row for T {}

/// Runs a statement that writes.
pub async fn execute(w: &mut Write<'_>, sql: impl Sql, args: impl Args) -> Result<()> {
    affected(w, sql, args).await.map(|_| ())
}

/// Runs a statement that writes; returns how many rows it affected.
pub async fn affected(w: &mut Write<'_>, sql: impl Sql, args: impl Args) -> Result<u64> {
    let done = sqlx::query_with(sql, bound(args)?)
        .execute(w.conn())
        .await?;
    Ok(done.rows_affected())
}

/// The one row of a query.
pub async fn one<T: Row>(conn: &mut Conn, sql: impl Sql, args: impl Args) -> Result<T> {
    sqlx::query_as_with(sql, bound(args)?).fetch_one(conn).await
}

/// The row of a query, if any.
pub async fn optional<T: Row>(
    conn: &mut Conn,
    sql: impl Sql,
    args: impl Args,
) -> Result<Option<T>> {
    sqlx::query_as_with(sql, bound(args)?)
        .fetch_optional(conn)
        .await
}

/// Every row of a query.
pub async fn all<T: Row>(conn: &mut Conn, sql: impl Sql, args: impl Args) -> Result<Vec<T>> {
    sqlx::query_as_with(sql, bound(args)?).fetch_all(conn).await
}

/// Every row of a query, streamed to `f` (nothing is collected).
pub async fn for_each<T: Row>(
    conn: &mut Conn,
    sql: impl Sql,
    args: impl Args,
    mut f: impl FnMut(T) + Send,
) -> Result<()> {
    let mut rows = sqlx::query_as_with(sql, bound(args)?).fetch(conn);
    while let Some(row) = rows.try_next().await? {
        f(row);
    }
    Ok(())
}

/// The first column of the one row of a query (a count, an id).
pub async fn scalar<T>(conn: &mut Conn, sql: impl Sql, args: impl Args) -> Result<T>
where
    (T,): Row,
{
    one(conn, sql, args).await.map(|(value,)| value)
}

/// The first column of the row of a query, if any.
pub async fn scalar_optional<T>(
    conn: &mut Conn,
    sql: impl Sql,
    args: impl Args,
) -> Result<Option<T>>
where
    (T,): Row,
{
    Ok(optional(conn, sql, args).await?.map(|(value,)| value))
}

/// The first column of every row of a query.
pub async fn scalars<T>(conn: &mut Conn, sql: impl Sql, args: impl Args) -> Result<Vec<T>>
where
    (T,): Row,
{
    let rows: Vec<(T,)> = all(conn, sql, args).await?;
    Ok(rows.into_iter().map(|(value,)| value).collect())
}

/// `Type` and `Decode` of a column wrapper: the column is read as `$stored`,
/// then made into the wrapper by `$make`.
macro_rules! read_as {
    ($wrapper:ty, $stored:ty, $make:expr) => {
        impl sqlx::Type<sqlx::Any> for $wrapper {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <$stored as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <$stored as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $wrapper {
            fn decode(
                value: <sqlx::Any as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                <$stored as sqlx::Decode<sqlx::Any>>::decode(value).map($make)
            }
        }
    };
}
pub(crate) use read_as;

/// A flag column: BIGINT 0/1 (the `Any` driver has no SQLite boolean). Read
/// into a `bool` field with `#[sqlx(try_from = "Flag")]`.
#[derive(Debug, Clone, Copy)]
pub struct Flag(bool);

read_as!(Flag, i64, |n: i64| Flag(n != 0));

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

/// A text column read into another type with `#[sqlx(try_from = "Text")]`:
/// JSON (a list, a map, a value) or the name of an enum value. Data that does
/// not parse, or NULL, reads as the type's default.
#[derive(Debug, Clone, Default)]
pub struct Text(Option<String>);

impl Text {
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }

    /// The JSON it holds, or `T`'s default.
    pub fn json<T: DeserializeOwned + Default>(&self) -> T {
        self.0
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}

read_as!(Text, Option<String>, Text);

impl<T: DeserializeOwned> From<Text> for Vec<T> {
    fn from(text: Text) -> Vec<T> {
        text.json()
    }
}

impl<V: DeserializeOwned> From<Text> for BTreeMap<String, V> {
    fn from(text: Text) -> BTreeMap<String, V> {
        text.json()
    }
}

impl From<Text> for serde_json::Value {
    fn from(text: Text) -> serde_json::Value {
        text.json()
    }
}

/// An optional JSON column: absent when NULL or unreadable.
impl From<Text> for Option<serde_json::Value> {
    fn from(text: Text) -> Option<serde_json::Value> {
        text.0.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }
}

/// An optional JSON list: absent when NULL or unreadable.
impl<T: DeserializeOwned> From<Text> for Option<Vec<T>> {
    fn from(text: Text) -> Option<Vec<T>> {
        text.0.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }
}

/// Enum values stored by their names, read with their `parse` (which gives
/// an unknown name its fallback value).
macro_rules! parsed {
    ($($t:ty),+) => {
        $(impl From<Text> for $t {
            fn from(text: Text) -> $t {
                <$t>::parse(text.as_str())
            }
        })+
    };
}

parsed!(UserStatus, LoginType, JobType, Transition);

/// `$1,$2,...,$n`: the placeholders of an `IN (...)` list.
pub fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Most ids in one `IN (...)` list: 300 ids of 36 bytes (plus length
/// prefixes) keep a statement small (see `bulk.rs`).
pub const IDS_PER_STATEMENT: usize = 300;

/// Runs `template` for `ids`, [`IDS_PER_STATEMENT`] at a time, its `{ids}`
/// replaced by the placeholders of each chunk.
pub async fn execute_in(w: &mut Write<'_>, template: &'static str, ids: &[&str]) -> Result<()> {
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        // Only placeholders reach the SQL text.
        let sql = sqlx::AssertSqlSafe(template.replace("{ids}", &placeholders(chunk.len())));
        execute(w, sql, chunk).await?;
    }
    Ok(())
}

/// The rows of `template` for `ids`, [`IDS_PER_STATEMENT`] at a time, its
/// `{ids}` replaced by the placeholders of each chunk (each id is bound once,
/// however often `{ids}` stands).
pub async fn all_in<T>(conn: &mut Conn, template: &'static str, ids: &[&str]) -> Result<Vec<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        // Only placeholders reach the SQL text.
        let sql = sqlx::AssertSqlSafe(template.replace("{ids}", &placeholders(chunk.len())));
        out.extend(all(&mut *conn, sql, chunk).await?);
    }
    Ok(out)
}

/// One page of a listing (`limit` rows after `offset`, in `order`) and how
/// many rows match in all: `SELECT {columns} FROM {from}` with `args` bound to
/// the placeholders of `from` (its joins and conditions).
pub async fn page<T>(
    conn: &mut Conn,
    columns: &str,
    from: &str,
    order: &str,
    args: impl Args + Clone,
    (limit, offset): (i64, i64),
) -> Result<(Vec<T>, i64)>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    // The parts are constants of the store: no input reaches the SQL text.
    let total = scalar(
        &mut *conn,
        sql!("SELECT COUNT(*) FROM {from}"),
        args.clone(),
    )
    .await?;
    let mut list = bound(args)?;
    let n = list.len();
    list.add(limit).map_err(sqlx::Error::Encode)?;
    list.add(offset).map_err(sqlx::Error::Encode)?;
    let sql = sql!(
        "SELECT {columns} FROM {from} ORDER BY {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let rows = sqlx::query_as_with(sql, list).fetch_all(conn).await?;
    Ok((rows, total))
}
