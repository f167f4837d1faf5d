//! One module per subcommand, each with `async fn run(args, ctx) ->
//! Result<Output, ClientError>`; [`run`] picks the one to call.

pub mod bench_cells;
pub mod call;
pub mod cas;
pub mod create_db;
pub mod create_table;
pub mod data;
pub mod delete;
pub mod describe;
pub mod drop_table;
pub mod files;
pub mod get;
pub mod import_csv;
pub mod insert;
pub mod ls;
pub mod pki;
pub mod scan;
pub mod set;
pub mod stats;
pub mod tables;
pub mod update;
pub mod watch;

use crate::ClientError;
use crate::cli::Command;
use crate::context::Context;
use crate::output::Output;

/// Runs `command` (any but `demo`, which needs no name server).
///
/// # Errors
/// What the command fails with.
pub async fn run(command: Command, ctx: &Context) -> Result<Output, ClientError> {
    match command {
        Command::Demo | Command::Pki(_) => Err(ClientError::Input(
            "`demo` and `pki` run without a name server connection".into(),
        )),
        Command::Ls(a) => ls::run(a, ctx).await,
        Command::Stats(a) => stats::run(a, ctx).await,
        Command::Describe(a) => describe::run(a, ctx).await,
        Command::Call(a) => call::run(a, ctx).await,
        Command::Tables => tables::run((), ctx).await,
        Command::CreateTable(a) => create_table::run(a, ctx).await,
        Command::CreateDb(a) => create_db::run(a, ctx).await,
        Command::DropTable(a) => drop_table::run(a, ctx).await,
        Command::Insert(a) => insert::run(a, ctx).await,
        Command::Get(a) => get::run(a, ctx).await,
        Command::Set(a) => set::run(a, ctx).await,
        Command::Update(a) => update::run(a, ctx).await,
        Command::Cas(a) => cas::run(a, ctx).await,
        Command::Delete(a) => delete::run(a, ctx).await,
        Command::Scan(a) => scan::run(a, ctx).await,
        Command::Watch(a) => watch::run(a, ctx).await,
        Command::ImportCsv(a) => import_csv::run(a, ctx).await,
        Command::PutFile(a) => files::put(a, ctx).await,
        Command::GetFile(a) => files::get(a, ctx).await,
        Command::BenchCells(a) => bench_cells::run(a, ctx).await,
        Command::Data(c) => data::run(c, ctx).await,
    }
}
