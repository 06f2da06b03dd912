//! `schema.graphql` is the checked-in SDL; this fails when it drifts from the code.
//! Regenerate with `UPDATE_SCHEMA=1 cargo test --test api schema`.

use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, Settings, StoreSettings};

use crate::helpers::test_settings;

#[tokio::test]
async fn checked_in_schema_matches_the_code() {
    let settings = Settings {
        store: StoreSettings::new(DatabaseUrl::Memory),
        ..test_settings()
    };
    let sdl = App::build(&settings).await.unwrap().schema().sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "schema.graphql is out of date; run `UPDATE_SCHEMA=1 cargo test --test api schema` \
         (or `cargo run -- schema > schema.graphql`)"
    );
}
