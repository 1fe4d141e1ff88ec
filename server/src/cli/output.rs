//! How client commands print: aligned tables and one-line messages for people,
//! the API's JSON as is for scripts (`--output json`).

use std::io::{ErrorKind, Write};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// The `--output` flag every client command takes (at any level below its
/// command group: `orgsync organizations --output json list` works too).
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Output format: `table` for people, `json` (the API's JSON as is) for scripts.
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,
}

impl OutputArgs {
    pub fn json(self) -> bool {
        self.output == OutputFormat::Json
    }

    /// Prints a JSON array as is with `--output json`, else as a table of
    /// one row per element: `(header, field)` per column, each cell as
    /// [`cell`] renders it.
    pub fn list(self, list: &Value, columns: &[(&'static str, &str)]) -> Result<()> {
        self.show(list, || {
            let headers: Vec<&'static str> = columns.iter().map(|(h, _)| *h).collect();
            let mut table = Table::new(&headers);
            for item in items(list) {
                table.row(columns.iter().map(|(_, key)| cell(item, key)).collect());
            }
            table.print()
        })
    }

    /// Prints the API's answer as is with `--output json`; else prints it for
    /// people as `human` does (a line, a table, fields).
    pub fn show(self, answer: &Value, human: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.json() { json(answer) } else { human() }
    }
}

/// Writes to stdout; a closed pipe (`orgsync ... | head`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

/// Prints one line for people.
pub fn line(text: impl std::fmt::Display) -> Result<()> {
    write_stdout(&format!("{text}\n"))
}

/// Prints a JSON value, pretty, with a final newline. `null` (a response
/// without a body) prints nothing.
pub fn json(value: &Value) -> Result<()> {
    if value.is_null() {
        return Ok(());
    }
    let text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    write_stdout(&format!("{text}\n"))
}

/// A table: a header row and aligned columns separated by two spaces.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) -> Result<()> {
        write_stdout(&self.render())
    }
}

/// Prints the elements of a list as a table, one row each.
pub fn table_of(
    list: &[Value],
    headers: &[&'static str],
    row: impl Fn(&Value) -> Vec<String>,
) -> Result<()> {
    let mut table = Table::new(headers);
    for v in list {
        table.row(row(v));
    }
    table.print()
}

/// A `{key: value}` object of a JSON value (tags) as `k=v,k=v`.
pub fn pairs_cell(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Prints `key: value` lines with the values aligned, for one object.
pub fn fields(pairs: &[(&str, String)]) -> Result<()> {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = width - key.chars().count();
        out.push_str(&format!("{key}:{}  {value}\n", " ".repeat(pad)));
    }
    write_stdout(&out)
}

/// A field of a JSON object as table text: strings as is, `-` when empty or
/// absent, lists joined with `, `, other values as JSON.
pub fn cell(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => "-".to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
        Some(other) => other.to_string(),
    }
}

/// The elements of a JSON array (an empty slice for anything else).
pub fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// The `id` of the element of the array `list` whose `id` is `key`, or whose
/// `name_field` is `key` (case-insensitively): how a command turns a name
/// given on the command line into the id a route takes.
pub fn find_id(list: &Value, key: &str, name_field: &str) -> Option<String> {
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
    let by_id = items(list)
        .iter()
        .find(|v| id_of(v).as_deref() == Some(key));
    let by_name = || {
        items(list).iter().find(|v| {
            v.get(name_field)
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty() && n.eq_ignore_ascii_case(key))
        })
    };
    by_id.or_else(by_name).and_then(id_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut t = Table::new(&["NAME", "DISPLAY NAME", "ID"]);
        t.row(vec!["coder".into(), "Coder".into(), "1".into()]);
        t.row(vec!["data-platform".into(), "-".into(), "22".into()]);
        assert_eq!(
            t.render(),
            "NAME           DISPLAY NAME  ID\n\
             coder          Coder         1\n\
             data-platform  -             22\n"
        );
    }

    #[test]
    fn cells_render_json_values() {
        let v = json!({"s": "x", "e": "", "n": null, "l": ["a", "b"], "z": [], "b": true, "i": 3});
        assert_eq!(cell(&v, "s"), "x");
        assert_eq!(cell(&v, "e"), "-");
        assert_eq!(cell(&v, "n"), "-");
        assert_eq!(cell(&v, "missing"), "-");
        assert_eq!(cell(&v, "l"), "a, b");
        assert_eq!(cell(&v, "z"), "-");
        assert_eq!(cell(&v, "b"), "yes");
        assert_eq!(cell(&v, "i"), "3");
    }
}
