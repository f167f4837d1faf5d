use rpc_core::remote;

#[remote]
pub trait Logger {
    async fn log(&self, msg: String);
}

fn main() {}
