// `sqlx::migrate!` embeds the migration files at compile time: rebuild when any of them changes
// (Cargo scans a directory given here recursively, so new files count too).
fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
