//! `schema.graphql` is the checked-in SDL; this fails when it drifts from the code.
//! Regenerate with `cargo run -- schema > schema.graphql`.

use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, Settings, StoreSettings};

#[tokio::test]
async fn checked_in_schema_matches_the_code() {
    let settings = Settings {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: "unused".into(),
        store: StoreSettings::new(DatabaseUrl::Memory),
        log_filter: "warn".to_owned(),
    };
    let sdl = App::build(&settings).await.unwrap().schema().sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "schema.graphql is out of date; run `cargo run -- schema > schema.graphql`"
    );
}
