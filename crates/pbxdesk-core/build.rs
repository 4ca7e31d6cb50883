// `sqlx::migrate!` embeds the migration folders, but on stable Rust a new file there does not
// make Cargo rebuild the crate by itself.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
