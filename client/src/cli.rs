//! The command line: one [`clap::Parser`] ([`Cli`]) with one subcommand enum
//! ([`Command`]). Parsing only; running a command is [`crate::commands`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Default path of the database in the name server.
pub const DEFAULT_DB_PATH: &str = "dbserver/db";

/// Default time a command (connecting included) may take, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Command-line client of the distributed demo database.
///
/// Exit status: 0 on success, 1 when the command failed, 2 for a usage error.
#[derive(Debug, Parser)]
#[command(name = "client", version, about)]
pub struct Cli {
    /// Address (HOST:PORT) of the name server; required by every command but `demo`.
    #[arg(long, global = true, env = "NAMESERVER", value_name = "ADDR")]
    pub nameserver: Option<String>,
    /// Path of the database in the name server.
    #[arg(long, global = true, default_value = DEFAULT_DB_PATH, value_name = "PATH")]
    pub db: String,
    /// Machine-readable output: one JSON document per command (for `watch`,
    /// one JSON object per line and change).
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds a command may take before it fails (`watch` and `bench-cells`:
    /// only their setup is bounded).
    #[arg(long, global = true, default_value_t = DEFAULT_TIMEOUT_SECS, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Directory of this client's TLS credentials (ca.pem, node.pem,
    /// node.key; see `client pki issue`), for servers that run --tls.
    #[arg(long, global = true, env = "DISTOBJ_TLS", value_name = "DIR")]
    pub tls: Option<PathBuf>,
    /// What peers may make this client's node hold (it serves callbacks).
    #[command(flatten)]
    pub limits: rpc_core::cli::LimitArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded name server and database server on loopback (temporary
    /// data directory) and walk through the main features; needs no name server.
    Demo,
    /// List a naming context of the name server, with the kind of each entry
    /// and, for a class, the servers offering it.
    Ls(LsArgs),
    /// What a running node reports about itself: exports, leases, imports,
    /// connections with each peer, calls in flight, served and failed,
    /// transfers, bytes in and out, data items.
    Stats(StatsArgs),
    /// The class of the object bound at PATH: its methods with argument
    /// names and types, result and error types, and doc comments.
    Describe(DescribeArgs),
    /// Call any method of any object: arguments as JSON (a bare word is a
    /// string), the result printed as JSON; a reference prints as
    /// `cap:<hex>`, which PATH and arguments accept.
    Call(CallArgs),
    /// Create a new database through class-based creation on a server that
    /// offers it (the dbservers do), bound as `<server>/NAME`; select it
    /// with `--db <server>/NAME`.
    CreateDb(CreateDbArgs),
    /// List the tables of the database with their columns.
    Tables,
    /// Create a table.
    CreateTable(CreateTableArgs),
    /// Drop a table and all its rows.
    DropTable(TableArg),
    /// Insert a row; prints the new row id.
    Insert(InsertArgs),
    /// Print the value of one cell.
    Get(CellArgs),
    /// Set the value of one cell.
    Set(SetArgs),
    /// Set several cells of one row at once (all or none): COL=VALUE...
    Update(UpdateArgs),
    /// Compare-and-set one cell: set NEW only if it holds EXPECTED; else
    /// fail, showing the value it holds.
    Cas(CasArgs),
    /// Delete one row (its id is never reused).
    Delete(RowArgs),
    /// Print the rows of a table as they are read, page by page (constant
    /// memory on both sides whatever the table's size).
    Scan(ScanArgs),
    /// Print the changes of a table (or of one cell) as they happen; the
    /// server calls back a listener object living in this process, bound
    /// meanwhile as `client-<id>/listener` in the name server.
    Watch(WatchArgs),
    /// Import a CSV file (header line = column names, optionally `name:type`)
    /// into a table, creating the table if needed; the server pulls the rows
    /// from this process through callbacks, page by page. While it runs,
    /// the source is bound as `client-<id>/import` in the name server.
    ImportCsv(ImportCsvArgs),
    /// Store a file's bytes in a cell (bytes or untyped column); the server
    /// pulls them in chunks, read from the file as it goes.
    PutFile(FileArgs),
    /// Write a cell's bytes to a file, chunk by chunk.
    GetFile(FileArgs),
    /// Benchmark: cell gets and sets per second, with many concurrent callers
    /// on one connection (and optionally several client processes).
    BenchCells(BenchCellsArgs),
    /// Data kept by the servers' data managers under data ids: store a file
    /// once, reference it from cells (`data:<id>`), move it between servers.
    #[command(subcommand)]
    Data(DataCommand),
    /// The cluster's certificates for `--tls`: make a CA, issue node
    /// credentials (needs no name server).
    #[command(subcommand)]
    Pki(PkiCommand),
}

/// The `pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Make a new cluster CA in CA_DIR (ca.pem, and ca.key readable by you only).
    Init {
        /// Directory of the CA (created; an existing CA is never overwritten).
        ca_dir: PathBuf,
    },
    /// Issue a credential for node NAME, signed by the CA in CA_DIR, into
    /// OUT_DIR (ca.pem, node.pem, node.key): what `--tls OUT_DIR` reads.
    Issue {
        /// Directory of the CA.
        ca_dir: PathBuf,
        /// The node's name (letters, digits, `-`, `_`, `.`): its identity.
        name: String,
        /// Directory to write the credential to (created).
        out_dir: PathBuf,
        /// An administrator's credential: may rebind, unbind and remove what
        /// other nodes own in the name server and the data managers.
        #[arg(long)]
        admin: bool,
    },
}

/// The `data` subcommands. NODE is the name-server context of a server with
/// a data manager (`dbserver`): its data manager is bound as `NODE/data`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Store a file's bytes on a server under a new data id (prints the id);
    /// the server pulls them in chunks, straight to its disk.
    Put(DataPutArgs),
    /// List data: everything the location service knows (stored data of
    /// every server), or everything one server keeps (volatile data too).
    Ls(DataLsArgs),
    /// Write the bytes of a data id to a file, chunk by chunk (a use:
    /// volatile data is gone afterwards).
    Get(DataGetArgs),
    /// Move persistent data to another server, node to node (sticky data
    /// cannot move).
    Mv(DataMvArgs),
    /// Delete a data id from the server that keeps it.
    Rm(DataRmArgs),
}

/// Arguments of `data put`.
#[derive(Debug, Args)]
pub struct DataPutArgs {
    /// The file to store.
    pub file: PathBuf,
    /// Persistence mode: volatile (one use), persistent, persistent_return,
    /// sticky (never moves) or sticky_return. The `*_return` modes copy the
    /// stored bytes back: to `--return-to`, or checked against FILE.
    #[arg(long, default_value = "persistent", value_parser = parse_mode)]
    pub mode: rpc_core::data::Persistence,
    /// Server to store it on (default: the context of `--db`, `dbserver`).
    #[arg(long, value_name = "NODE")]
    pub on: Option<String>,
    /// Where to write the copy a `*_return` mode sends back.
    #[arg(long, value_name = "PATH")]
    pub return_to: Option<PathBuf>,
}

/// Arguments of `data ls`.
#[derive(Debug, Args)]
pub struct DataLsArgs {
    /// List what this server keeps, instead of what the location service knows.
    #[arg(value_name = "NODE")]
    pub node: Option<String>,
}

/// Arguments of `data get`.
#[derive(Debug, Args)]
pub struct DataGetArgs {
    /// The data id.
    pub id: rpc_core::DataId,
    /// The file to write.
    pub path: PathBuf,
    /// Ask this server instead of the location service (volatile data is
    /// not registered there).
    #[arg(long, value_name = "NODE")]
    pub on: Option<String>,
}

/// Arguments of `data mv`.
#[derive(Debug, Args)]
pub struct DataMvArgs {
    /// The data id.
    pub id: rpc_core::DataId,
    /// The server to move it to.
    #[arg(value_name = "NODE")]
    pub to: String,
}

/// Arguments of `data rm`.
#[derive(Debug, Args)]
pub struct DataRmArgs {
    /// The data id.
    pub id: rpc_core::DataId,
    /// Ask this server instead of the location service.
    #[arg(long, value_name = "NODE")]
    pub on: Option<String>,
}

fn parse_mode(s: &str) -> Result<rpc_core::data::Persistence, String> {
    s.parse()
}

/// Arguments of `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Context to list (`dbserver`, `a/b`); the root when absent.
    #[arg(default_value = "")]
    pub path: String,
    /// Also the class of each object.
    #[arg(short = 'l', long)]
    pub long: bool,
}

/// Arguments of `call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Path of the object in the name server, or `cap:<hex>`.
    pub path: String,
    /// The method's name.
    pub method: String,
    /// Its arguments, one JSON value each.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Arguments of `describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Path of an object in the name server (`dbserver/db`).
    pub path: String,
}

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The node: its context in the name server (`dbserver`, `archive`,
    /// `nameserver`).
    pub node: String,
}

/// Arguments of `create-db`.
#[derive(Debug, Args)]
pub struct CreateDbArgs {
    /// Its name (letters, digits, `-`, `_`, `.`), under the server's context.
    pub name: String,
    /// The server to make it on (its context in the name server, such as
    /// `dbserver`); any server offering the class without it.
    #[arg(long, value_name = "NODE")]
    pub on: Option<String>,
}

/// A table name alone.
#[derive(Debug, Args)]
pub struct TableArg {
    /// Table name.
    pub table: String,
}

/// Arguments of `create-table`.
#[derive(Debug, Args)]
pub struct CreateTableArgs {
    /// Table name.
    pub table: String,
    /// Columns, comma-separated: `name` (any type) or `name:int`,
    /// `name:float`, `name:text`, `name:bytes`, `name:any`.
    #[arg(long, value_name = "COLUMNS", required = true)]
    pub columns: String,
}

/// Arguments of `insert`.
#[derive(Debug, Args)]
pub struct InsertArgs {
    /// Table name.
    pub table: String,
    /// One value per column: integers, floats, `null`, anything else is text
    /// (a text column takes the argument as written; a bytes column takes `0x` hex).
    #[arg(num_args = 1.., required = true, allow_hyphen_values = true)]
    pub values: Vec<String>,
}

/// A cell address.
#[derive(Debug, Args)]
pub struct CellArgs {
    /// Table name.
    pub table: String,
    /// Row id.
    pub row: u64,
    /// Column name.
    pub column: String,
}

/// Arguments of `set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The cell.
    #[command(flatten)]
    pub cell: CellArgs,
    /// The new value (as for `insert`).
    #[arg(allow_hyphen_values = true)]
    pub value: String,
}

/// A row address.
#[derive(Debug, Args)]
pub struct RowArgs {
    /// Table name.
    pub table: String,
    /// Row id.
    pub row: u64,
}

/// Arguments of `update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The row.
    #[command(flatten)]
    pub at: RowArgs,
    /// The new values, `COLUMN=VALUE` (values as for `insert`).
    #[arg(num_args = 1.., required = true, allow_hyphen_values = true, value_name = "COL=VALUE")]
    pub changes: Vec<String>,
}

/// Arguments of `cas`.
#[derive(Debug, Args)]
pub struct CasArgs {
    /// The cell.
    #[command(flatten)]
    pub cell: CellArgs,
    /// The value the cell must hold (as for `insert`).
    #[arg(allow_hyphen_values = true)]
    pub expected: String,
    /// The value to write.
    #[arg(allow_hyphen_values = true)]
    pub new: String,
}

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Table name.
    pub table: String,
    /// Print at most this many rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// Arguments of `put-file` and `get-file`.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// The cell.
    #[command(flatten)]
    pub cell: CellArgs,
    /// The file to read (`put-file`) or write (`get-file`).
    pub path: std::path::PathBuf,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Table name.
    pub table: String,
    /// Row id, to watch one cell (with COLUMN).
    #[arg(requires = "column")]
    pub row: Option<u64>,
    /// Column name, to watch one cell (with ROW).
    pub column: Option<String>,
    /// Exit after this many changes; without it, run until Ctrl-C.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// Arguments of `import-csv`.
#[derive(Debug, Args)]
pub struct ImportCsvArgs {
    /// Table name (created from the CSV header if it does not exist).
    pub table: String,
    /// CSV file (RFC 4180): a header line, then one record per row; an
    /// empty field is null. Read twice, a record at a time (checked, then
    /// imported), with a progress bar on a terminal; any size.
    pub file: PathBuf,
}

/// Arguments of `bench-cells`.
#[derive(Debug, Args)]
pub struct BenchCellsArgs {
    /// Concurrent callers per process, all on one connection.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub callers: u32,
    /// Length of each phase (gets, then sets), in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Client processes to run at once (this binary, started again); their
    /// rates are summed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub processes: u32,
    /// Run as one worker of `--processes`: wait for `go` on standard input
    /// after setting up, and print the result as JSON.
    #[arg(long, hide = true)]
    pub worker: bool,
}
