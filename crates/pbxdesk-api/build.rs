// The self-service page is embedded from ui/dist-self (rust-embed): a new build of it must
// rebuild the crate, also when the folder did not exist at the last build.
fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist-self");
}
