//! What `plugins/hello` does, as a WASI command: greet the first argument and
//! count the top-level entries of `/workspace` (preopened by the runner).
fn main() {
    let who = std::env::args().nth(1).unwrap_or_else(|| "world".into());
    let entries = std::fs::read_dir("/workspace")
        .expect("/workspace is preopened")
        .count();
    println!("Hello, {who}! The workspace has {entries} top-level entries.");
}
