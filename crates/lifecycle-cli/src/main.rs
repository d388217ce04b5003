//! The `lifecycle` command.
fn main() {}
