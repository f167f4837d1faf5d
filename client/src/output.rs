//! All printing of the client: what each command returns ([`Output`]), the
//! changes `watch` streams ([`WatchEvent`]), both rendered for humans or as
//! JSON ([`render`], [`render_event`]), and the [`Printer`] writing them.
//!
//! JSON values: `null`, numbers for `int` and finite `float` (a float always
//! has a fraction or exponent, `1.0`), strings for `text`, `{"bytes": "00ab"}`
//! (hex) for bytes, `{"blob": SIZE}` for bytes the store keeps out of line,
//! `{"data": "<uuid>"}` for data references, `{"float":
//! "NaN"}` for non-finite floats.

use crate::schema::describe_columns;
use dbserver::api::{TableChange, TableInfo};
use dbserver::{Column, Value};
use nameserver::api::Entry;
use rpc_core::DataId;
use rpc_core::data::DataInfo;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::io::Write;

/// The figures of one `bench-cells` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// Concurrent callers per process.
    pub callers: u32,
    /// Processes whose figures are summed.
    pub processes: u32,
    /// Length of each phase, in seconds.
    pub seconds: u64,
    /// The get phase.
    pub get: PhaseReport,
    /// The set phase.
    pub set: PhaseReport,
}

/// The figures of one `bench-cells` phase.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Calls that succeeded.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Successful calls per second.
    pub per_sec: f64,
    /// Median latency, in microseconds (several processes: the worst median).
    pub p50_us: u64,
    /// 99th percentile latency, in microseconds (several processes: the worst).
    pub p99_us: u64,
}

/// What a command produced, printed once it finished.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Nothing more to print (`watch` printed as it went).
    None,
    /// `pki init`: a new CA.
    CertificateAuthority {
        /// Its directory.
        dir: std::path::PathBuf,
    },
    /// `pki issue`: a new node credential.
    Credential {
        /// The node name it proves.
        name: String,
        /// Whether it is an administrator's.
        admin: bool,
        /// Its directory.
        dir: std::path::PathBuf,
    },
    /// `ls`: the entries of a naming context.
    Entries {
        /// The context listed (empty: the root).
        path: String,
        /// Its entries, by name.
        entries: Vec<Entry>,
        /// For each class entry, the addresses of the nodes offering it.
        offers: std::collections::BTreeMap<String, Vec<String>>,
        /// With `-l`: the class of each object entry (absent if unknown).
        classes: std::collections::BTreeMap<String, String>,
    },
    /// `call`: what a method returned.
    Called {
        /// The method.
        method: String,
        /// Its result, as JSON.
        result: Json,
    },
    /// `describe`: an object's class.
    Described {
        /// The object's path.
        path: String,
        /// Its class.
        class: rpc_core::ClassDescription,
    },
    /// `stats`: what a node reports about itself.
    Stats {
        /// The context it was found through.
        node: String,
        /// Its node id.
        id: rpc_core::NodeId,
        /// Its address.
        addr: String,
        /// Its counts.
        stats: rpc_core::NodeStats,
        /// Its connections.
        peers: Vec<rpc_core::PeerStats>,
    },
    /// `create-db`: a database made by class-based creation.
    DbCreated {
        /// Where it is bound in the name server (what `--db` takes).
        path: String,
        /// Address of the server keeping it.
        node: String,
    },
    /// `tables`: every table with its columns.
    Tables(Vec<TableInfo>),
    /// `create-table`: the new table.
    Created(TableInfo),
    /// `drop-table`: the table dropped.
    Dropped {
        /// Its name.
        table: String,
    },
    /// `insert`: the new row.
    Inserted {
        /// Table name.
        table: String,
        /// Id of the new row.
        row: u64,
    },
    /// `delete`: the row deleted.
    Deleted {
        /// Table name.
        table: String,
        /// Row id.
        row: u64,
    },
    /// `get`: one cell's value.
    Value {
        /// Table name.
        table: String,
        /// Row id.
        row: u64,
        /// Column name.
        column: String,
        /// The value.
        value: Value,
    },
    /// `set`: the value written.
    Set {
        /// Table name.
        table: String,
        /// Row id.
        row: u64,
        /// Column name.
        column: String,
        /// The new value.
        value: Value,
    },
    /// `put-file` / `get-file`: bytes moved between a file and a cell.
    File {
        /// Table name.
        table: String,
        /// Row id.
        row: u64,
        /// Column name.
        column: String,
        /// The local file.
        path: String,
        /// Bytes moved.
        bytes: u64,
        /// True for `put-file` (file to cell).
        put: bool,
    },
    /// `scan`: every row of a table.
    Rows {
        /// Name and columns.
        info: TableInfo,
        /// `(row id, values)`, in id order.
        rows: Vec<(u64, Vec<Value>)>,
    },
    /// `import-csv`: how many rows the server pulled.
    Imported {
        /// Table name.
        table: String,
        /// Rows imported.
        rows: u64,
        /// Whether the table was created from the CSV header.
        created: bool,
    },
    /// `bench-cells`: the figures.
    Bench(BenchReport),
    /// `data put`: the data stored.
    DataPut {
        /// Id, mode, size and checksum.
        info: DataInfo,
        /// The server keeping it.
        node: String,
        /// The copy a `*_return` mode sent back.
        returned: Option<Returned>,
    },
    /// `data ls`: data and the servers keeping it.
    DataList(Vec<DataRow>),
    /// `data get`: data written to a file.
    DataGot {
        /// The data.
        info: DataInfo,
        /// The server it came from.
        node: String,
        /// The file written.
        path: String,
        /// Bytes written.
        bytes: u64,
    },
    /// `data mv`: data moved between servers.
    DataMoved {
        /// The data.
        info: DataInfo,
        /// The server that kept it.
        from: String,
        /// The server keeping it now.
        to: String,
    },
    /// `data rm`: data deleted.
    DataRemoved {
        /// What it was.
        info: DataInfo,
        /// The server that kept it.
        node: String,
    },
}

/// The copy of stored data that a `*_return` mode sent back to `data put`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    /// Its size.
    pub bytes: u64,
    /// Where it was written (`--return-to`), if anywhere.
    pub path: Option<String>,
    /// Without `--return-to`: whether it equals the file sent.
    pub identical: Option<bool>,
}

/// One line of `data ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    /// The data id.
    pub id: DataId,
    /// What its server says of it (missing when the server could not be asked
    /// or no longer has it).
    pub info: Option<DataInfo>,
    /// The server keeping it.
    pub node: String,
}

/// One change received by `watch`.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The watched table.
    pub table: String,
    /// What changed (a watched cell reports [`TableChange::CellSet`]).
    pub change: TableChange,
}

/// Writes outputs and events to standard output, notices to standard error.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// JSON instead of text.
    json: bool,
}

impl Printer {
    /// A printer for text (`json == false`) or JSON output.
    pub fn new(json: bool) -> Printer {
        Printer { json }
    }

    /// Whether output is JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints a command's output (nothing for [`Output::None`]).
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn print(&self, output: &Output) -> std::io::Result<()> {
        if matches!(output, Output::None) {
            return Ok(());
        }
        self.line(&render(output, self.json))
    }

    /// Prints one change at once (flushed, so that a reader sees it now).
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn event(&self, event: &WatchEvent) -> std::io::Result<()> {
        self.line(&render_event(event, self.json))
    }

    /// Prints `text` and a line break on standard output, flushed.
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn line(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }

    /// A progress notice for people, on standard error (never part of the output).
    pub fn notice(&self, text: &str) {
        eprintln!("client: {text}");
    }
}

/// A value as JSON (see the module doc).
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::Float(f) if f.is_finite() => json!(f),
        Value::Float(f) => json!({ "float": f.to_string() }),
        Value::Text(s) => json!(s),
        Value::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            json!({ "bytes": hex })
        }
        Value::Blob { size } => json!({ "blob": size }),
        Value::Data(id) => json!({ "data": id.to_string() }),
    }
}

fn data_json(info: &DataInfo) -> Json {
    json!({
        "id": info.id.to_string(),
        "mode": info.mode.name(),
        "size": info.size,
        "crc32": format!("{:08x}", info.checksum),
    })
}

fn columns_json(columns: &[Column]) -> Json {
    columns
        .iter()
        .map(|c| json!({ "name": c.name, "type": c.ty.to_string() }))
        .collect()
}

fn table_json(info: &TableInfo) -> Json {
    json!({ "name": info.name, "columns": columns_json(&info.columns) })
}

fn values_json(values: &[Value]) -> Json {
    values.iter().map(value_json).collect()
}

fn phase_json(p: &PhaseReport) -> Json {
    json!({
        "calls": p.calls,
        "errors": p.errors,
        "per_sec": p.per_sec,
        "p50_us": p.p50_us,
        "p99_us": p.p99_us,
    })
}

/// A command's output as one text block (no final line break) or one JSON document.
pub fn render(output: &Output, json: bool) -> String {
    if json {
        render_json(output).to_string()
    } else {
        render_text(output)
    }
}

fn render_json(output: &Output) -> Json {
    match output {
        Output::None => Json::Null,
        Output::Entries {
            path,
            entries,
            offers,
            classes,
        } => json!({
            "path": path,
            "entries": entries
                .iter()
                .map(|e| {
                    let mut j = json!({ "name": e.name, "kind": e.kind.to_string() });
                    if let Some(by) = offers.get(&e.name) {
                        j["offered_by"] = json!(by);
                    }
                    if let Some(c) = classes.get(&e.name) {
                        j["class"] = json!(c);
                    }
                    j
                })
                .collect::<Vec<_>>(),
        }),
        Output::Called { method, result } => json!({ "method": method, "result": result }),
        Output::Described { path, class } => json!({
            "path": path,
            "class": class.name,
            "doc": class.doc,
            "methods": class
                .methods
                .iter()
                .map(|m| json!({
                    "name": m.name,
                    "doc": m.doc,
                    "args": m.args.iter().map(|(n, t)| json!({ "name": n, "type": t })).collect::<Vec<_>>(),
                    "ok": m.ok,
                    "err": m.err,
                }))
                .collect::<Vec<_>>(),
        }),
        Output::DbCreated { path, node } => json!({ "database": path, "node": node }),
        Output::Stats {
            node,
            id,
            addr,
            stats,
            peers,
        } => json!({
            "node": node,
            "id": id.0.to_string(),
            "addr": addr,
            "stats": stats,
            "peers": peers
                .iter()
                .map(|p| json!({
                    "node": p.node.0.to_string(),
                    "addr": p.addr,
                    "inflight_requests": p.inflight_requests,
                    "pending_calls": p.pending_calls,
                    "queued_bytes": p.queued_bytes,
                }))
                .collect::<Vec<_>>(),
        }),
        Output::Tables(tables) => {
            json!({ "tables": tables.iter().map(table_json).collect::<Vec<_>>() })
        }
        Output::Created(info) => json!({ "created": table_json(info) }),
        Output::Dropped { table } => json!({ "dropped": table }),
        Output::CertificateAuthority { dir } => json!({ "ca": dir.display().to_string() }),
        Output::Credential { name, admin, dir } => json!({
            "name": name,
            "admin": admin,
            "dir": dir.display().to_string(),
        }),
        Output::Inserted { table, row } => json!({ "table": table, "row": row }),
        Output::Deleted { table, row } => json!({ "table": table, "row": row, "deleted": true }),
        Output::Value {
            table,
            row,
            column,
            value,
        }
        | Output::Set {
            table,
            row,
            column,
            value,
        } => json!({ "table": table, "row": row, "column": column, "value": value_json(value) }),
        Output::File {
            table,
            row,
            column,
            path,
            bytes,
            ..
        } => json!({ "table": table, "row": row, "column": column, "path": path, "bytes": bytes }),
        Output::Rows { info, rows } => json!({
            "table": info.name,
            "columns": columns_json(&info.columns),
            "rows": rows
                .iter()
                .map(|(id, values)| json!({ "id": id, "values": values_json(values) }))
                .collect::<Vec<_>>(),
        }),
        Output::Imported {
            table,
            rows,
            created,
        } => json!({ "table": table, "imported": rows, "created": created }),
        Output::DataPut {
            info,
            node,
            returned,
        } => {
            let mut j = json!({ "data": data_json(info), "node": node });
            if let Some(r) = returned {
                j["returned"] =
                    json!({ "bytes": r.bytes, "path": r.path, "identical": r.identical });
            }
            j
        }
        Output::DataList(rows) => rows
            .iter()
            .map(|r| match &r.info {
                Some(info) => json!({ "data": data_json(info), "node": r.node }),
                None => {
                    json!({ "data": { "id": r.id.to_string() }, "node": r.node, "missing": true })
                }
            })
            .collect(),
        Output::DataGot {
            info,
            node,
            path,
            bytes,
        } => json!({ "data": data_json(info), "node": node, "path": path, "bytes": bytes }),
        Output::DataMoved { info, from, to } => {
            json!({ "data": data_json(info), "from": from, "to": to })
        }
        Output::DataRemoved { info, node } => {
            json!({ "removed": data_json(info), "node": node })
        }
        Output::Bench(r) => json!({
            "callers": r.callers,
            "processes": r.processes,
            "seconds": r.seconds,
            "get": phase_json(&r.get),
            "set": phase_json(&r.set),
        }),
    }
}

fn render_text(output: &Output) -> String {
    match output {
        Output::None => String::new(),
        Output::Entries {
            entries,
            offers,
            classes,
            ..
        } => entries
            .iter()
            .map(|e| match (offers.get(&e.name), classes.get(&e.name)) {
                (Some(by), _) => format!(
                    "{:<8} {}  offered by {}",
                    e.kind.to_string(),
                    e.name,
                    by.join(", ")
                ),
                (None, Some(class)) => format!("{:<8} {}  {class}", e.kind.to_string(), e.name),
                (None, None) => format!("{:<8} {}", e.kind.to_string(), e.name),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Output::Described { path, class } => described_text(path, class),
        Output::Called { result, .. } => result.to_string(),
        Output::DbCreated { path, node } => format!("created database {path} on {node}"),
        Output::Stats {
            node,
            id,
            addr,
            stats,
            peers,
        } => stats_text(node, id, addr, stats, peers),
        Output::Tables(tables) => tables
            .iter()
            .map(|t| format!("{}  {}", t.name, describe_columns(&t.columns)))
            .collect::<Vec<_>>()
            .join("\n"),
        Output::Created(info) => format!(
            "created table {} ({})",
            info.name,
            describe_columns(&info.columns)
        ),
        Output::Dropped { table } => format!("dropped table {table}"),
        Output::CertificateAuthority { dir } => format!("made a CA in {}", dir.display()),
        Output::Credential { name, admin, dir } => format!(
            "issued {}credential `{name}` in {}",
            if *admin { "administrator " } else { "" },
            dir.display()
        ),
        Output::Inserted { row, .. } => row.to_string(),
        Output::Deleted { table, row } => format!("deleted {table}[{row}]"),
        Output::Value { value, .. } => value.to_string(),
        Output::Set {
            table,
            row,
            column,
            value,
        } => format!("{table}[{row}].{column} = {value}"),
        Output::File {
            table,
            row,
            column,
            path,
            bytes,
            put,
        } => {
            if *put {
                format!("stored {bytes} bytes from {path} in {table}[{row}].{column}")
            } else {
                format!("wrote {bytes} bytes of {table}[{row}].{column} to {path}")
            }
        }
        Output::Rows { info, rows } => rows_text(info, rows),
        Output::Imported {
            table,
            rows,
            created,
        } => {
            let how = if *created { " (table created)" } else { "" };
            let s = if *rows == 1 { "" } else { "s" };
            format!("imported {rows} row{s} into {table}{how}")
        }
        Output::DataPut { info, returned, .. } => {
            // The id alone on the first line, so that scripts can take it.
            let mut text = info.id.to_string();
            match returned {
                Some(Returned {
                    path: Some(p),
                    bytes,
                    ..
                }) => text.push_str(&format!("\ncopied back {bytes} bytes to {p}")),
                Some(Returned {
                    identical: Some(same),
                    bytes,
                    ..
                }) => {
                    let how = if *same {
                        "identical to"
                    } else {
                        "DIFFERENT from"
                    };
                    text.push_str(&format!("\ncopied back {bytes} bytes, {how} the file sent"));
                }
                _ => {}
            }
            text
        }
        Output::DataList(rows) => rows
            .iter()
            .map(|r| match &r.info {
                Some(i) => format!("{}  {:<17} {:>12}  {}", i.id, i.mode.name(), i.size, r.node),
                None => format!("{}  {:<17} {:>12}  {}", r.id, "?", "?", r.node),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Output::DataGot {
            info,
            node,
            path,
            bytes,
        } => format!(
            "wrote {bytes} bytes of data {} from {node} to {path}",
            info.id
        ),
        Output::DataMoved { info, from, to } => {
            format!(
                "moved data {} ({} bytes) from {from} to {to}",
                info.id, info.size
            )
        }
        Output::DataRemoved { info, node } => format!("removed data {} from {node}", info.id),
        Output::Bench(r) => {
            let phase = |name: &str, p: &PhaseReport| {
                format!(
                    "{name}: {:>10.0} calls/s  ({} calls, {} errors, p50 {} us, p99 {} us)",
                    p.per_sec, p.calls, p.errors, p.p50_us, p.p99_us
                )
            };
            let worst = if r.processes > 1 {
                " (latencies: worst process)"
            } else {
                ""
            };
            format!(
                "bench-cells: {} callers x {} process(es), {} s per phase{worst}\n{}\n{}",
                r.callers,
                r.processes,
                r.seconds,
                phase("get", &r.get),
                phase("set", &r.set)
            )
        }
    }
}

/// `describe` as text: the class and its doc, then each method's signature
/// with its doc indented under it.
fn described_text(path: &str, class: &rpc_core::ClassDescription) -> String {
    let mut out = vec![format!("{path}: {}", class.name)];
    if !class.doc.is_empty() {
        out.extend(class.doc.lines().map(|l| format!("  {l}")));
    }
    for m in &class.methods {
        let args: Vec<String> = m.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let result = if m.ok.is_empty() {
            String::new()
        } else {
            format!(" -> Result<{}, {}>", m.ok, m.err)
        };
        out.push(format!("  {}({}){result}", m.name, args.join(", ")));
        out.extend(m.doc.lines().map(|l| format!("      {l}")));
    }
    out.join("\n")
}

/// `stats` as text: one line per subject, then one per peer.
fn stats_text(
    node: &str,
    id: &rpc_core::NodeId,
    addr: &str,
    s: &rpc_core::NodeStats,
    peers: &[rpc_core::PeerStats],
) -> String {
    let mut out = vec![
        format!("node         {node} ({}) at {addr}", id.0),
        format!(
            "objects      {} exported, {} leases given, {} imported",
            s.exports, s.leases, s.imports
        ),
        format!(
            "calls        {} in flight, {} served, {} failed, {} of its own waiting",
            s.inflight_requests, s.calls_served, s.calls_failed, s.pending_calls
        ),
        format!(
            "transfers    {} out, {} in",
            s.transfers_out, s.transfers_in
        ),
        format!(
            "bytes        {} in, {} out, {} queued",
            s.bytes_received, s.bytes_sent, s.queued_bytes
        ),
        format!("data items   {}", s.data_items),
        format!("connections  {}", s.connections),
    ];
    for p in peers {
        out.push(format!(
            "  {}  {}  {} in flight, {} waiting, {} bytes queued",
            p.node.0,
            p.addr.as_deref().unwrap_or("(does not listen)"),
            p.inflight_requests,
            p.pending_calls,
            p.queued_bytes
        ));
    }
    out.join("\n")
}

/// A table as aligned columns, with a header line (`id` and the column names).
fn rows_text(info: &TableInfo, rows: &[(u64, Vec<Value>)]) -> String {
    let mut table = vec![header_cells(info)];
    table.extend(rows.iter().map(row_cells));
    let widths = column_widths(&table);
    table
        .iter()
        .map(|line| aligned(line, &widths))
        .collect::<Vec<_>>()
        .join("\n")
}

fn header_cells(info: &TableInfo) -> Vec<String> {
    let mut header = vec!["id".to_owned()];
    header.extend(info.columns.iter().map(|c| c.name.clone()));
    header
}

fn row_cells((id, values): &(u64, Vec<Value>)) -> Vec<String> {
    let mut line = vec![id.to_string()];
    line.extend(values.iter().map(ToString::to_string));
    line
}

/// The width of each column: its longest cell, in characters.
fn column_widths(table: &[Vec<String>]) -> Vec<usize> {
    let width = table.iter().map(Vec::len).max().unwrap_or(0);
    (0..width)
        .map(|i| {
            table
                .iter()
                .filter_map(|l| l.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

fn aligned(line: &[String], widths: &[usize]) -> String {
    let cells: Vec<String> = line
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let w = widths.get(i).copied().unwrap_or(0);
            format!("{s:<w$}")
        })
        .collect();
    cells.join("  ").trim_end().to_owned()
}

/// Prints a table's rows as they arrive, page by page, in the same form
/// [`Output::Rows`] has: text aligned to the header and the first page
/// (a longer value later only pushes its own line out), or one JSON
/// document written piece by piece.
#[derive(Debug)]
pub struct RowStream {
    json: bool,
    info: TableInfo,
    /// Text: the column widths, fixed by the first page.
    widths: Option<Vec<usize>>,
    /// JSON: rows written so far (a comma goes before each but the first).
    written: u64,
}

impl RowStream {
    /// Starts printing the rows of `info`'s table.
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn start(printer: Printer, info: TableInfo) -> std::io::Result<RowStream> {
        if printer.json {
            // serde_json orders an object's keys: `columns`, `rows`, `table`.
            let columns = columns_json(&info.columns).to_string();
            write!(
                std::io::stdout().lock(),
                "{{\"columns\":{columns},\"rows\":["
            )?;
        }
        Ok(RowStream {
            json: printer.json,
            info,
            widths: None,
            written: 0,
        })
    }

    /// Prints one page of rows.
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn page(&mut self, rows: &[(u64, Vec<Value>)]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            for row in rows {
                if self.written > 0 {
                    out.write_all(b",")?;
                }
                let j = json!({ "id": row.0, "values": values_json(&row.1) });
                write!(out, "{j}")?;
                self.written += 1;
            }
            return out.flush();
        }
        let widths = match &self.widths {
            Some(w) => w.clone(),
            None => {
                let mut table = vec![header_cells(&self.info)];
                table.extend(rows.iter().map(row_cells));
                let w = column_widths(&table);
                writeln!(out, "{}", aligned(&table[0], &w))?;
                self.widths = Some(w.clone());
                w
            }
        };
        for row in rows {
            writeln!(out, "{}", aligned(&row_cells(row), &widths))?;
        }
        out.flush()
    }

    /// Ends the output (the header alone for an empty table).
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn finish(mut self) -> std::io::Result<()> {
        if self.json {
            let name = Json::from(self.info.name.clone());
            let mut out = std::io::stdout().lock();
            writeln!(out, "],\"table\":{name}}}")?;
            return out.flush();
        }
        if self.widths.is_none() {
            self.page(&[])?;
        }
        Ok(())
    }
}

/// One watched change as one line of text or one JSON object.
pub fn render_event(event: &WatchEvent, json: bool) -> String {
    let table = &event.table;
    if json {
        let j = match &event.change {
            TableChange::Inserted { row, values } => {
                json!({ "table": table, "change": "inserted", "row": row, "values": values_json(values) })
            }
            TableChange::Updated { row, values } => {
                json!({ "table": table, "change": "updated", "row": row, "values": values_json(values) })
            }
            TableChange::Deleted { row } => {
                json!({ "table": table, "change": "deleted", "row": row })
            }
            TableChange::CellSet { row, column, value } => json!({
                "table": table, "change": "set", "row": row, "column": column, "value": value_json(value),
            }),
            TableChange::Dropped => json!({ "table": table, "change": "dropped" }),
        };
        return j.to_string();
    }
    let joined = |values: &[Value]| {
        values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &event.change {
        TableChange::Inserted { row, values } => {
            format!("inserted {table}[{row}]: {}", joined(values))
        }
        TableChange::Updated { row, values } => {
            format!("updated {table}[{row}]: {}", joined(values))
        }
        TableChange::Deleted { row } => format!("deleted {table}[{row}]"),
        TableChange::CellSet { row, column, value } => {
            format!("set {table}[{row}].{column} = {value}")
        }
        TableChange::Dropped => format!("dropped {table}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbserver::ValueType;

    #[test]
    fn values_as_json() {
        assert_eq!(value_json(&Value::Null), Json::Null);
        assert_eq!(value_json(&Value::Int(3)).to_string(), "3");
        assert_eq!(value_json(&Value::Float(3.0)).to_string(), "3.0");
        assert_eq!(value_json(&Value::Text("3".into())).to_string(), "\"3\"");
        assert_eq!(
            value_json(&Value::Bytes(vec![0, 0xab])).to_string(),
            r#"{"bytes":"00ab"}"#
        );
        assert_eq!(
            value_json(&Value::Float(f64::NAN)).to_string(),
            r#"{"float":"NaN"}"#
        );
    }

    #[test]
    fn scan_text_is_aligned() {
        let info = TableInfo {
            name: "t".into(),
            columns: vec![
                Column::new("name", ValueType::Text),
                Column::new("n", ValueType::Int),
            ],
        };
        let rows = vec![
            (1, vec![Value::Text("ada".into()), Value::Int(1815)]),
            (12, vec![Value::Text("al".into()), Value::Null]),
        ];
        assert_eq!(
            render(&Output::Rows { info, rows }, false),
            "id  name  n\n1   ada   1815\n12  al    null"
        );
    }

    #[test]
    fn events_as_text_and_json() {
        let e = WatchEvent {
            table: "t".into(),
            change: TableChange::CellSet {
                row: 2,
                column: "n".into(),
                value: Value::Int(5),
            },
        };
        assert_eq!(render_event(&e, false), "set t[2].n = 5");
        let j: Json = serde_json::from_str(&render_event(&e, true)).unwrap();
        assert_eq!(j["change"], "set");
        assert_eq!(j["value"], 5);
    }
}
