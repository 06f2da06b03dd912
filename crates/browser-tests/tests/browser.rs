//! Browser tests: the real service driven in headless Chromium over WebDriver (Debian's
//! `chromium` and `chromium-driver`). When they are missing, the first test installs them with
//! apt-get (as root or through sudo), as `.ci/run` does; a machine where that is impossible
//! fails here with the command to run. Each test saves a screenshot under `target/browser/`.
//! The tests take turns (one browser at a time) so that two cores keep up with them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

// The black-box suite's helpers (spawning the service in-process, speaking GraphQL to it).
#[allow(dead_code)]
#[path = "../../../tests/api/helpers.rs"]
mod helpers;
#[path = "../../../tests/api/test_store.rs"]
#[allow(dead_code)]
mod test_store;

use helpers::{ADMIN_KEY, TestApp};

/// One browser at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// axe-core (`package.json` beside this crate's manifest), installed with npm when missing.
fn axe_source() -> String {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = crate_dir.join("node_modules/axe-core/axe.min.js");
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed && !script.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(crate_dir)
            .status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "axe-core is missing and `npm ci` in {} failed; run it by hand",
            crate_dir.display()
        );
    }
    *installed = true;
    std::fs::read_to_string(&script).expect("axe-core's script")
}

/// Installs Chromium and its driver once per test run when they are missing.
fn ensure_installed() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed || (Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()) {
        *installed = true;
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    let done = apt(&["install", "-y", "-qq", "chromium", "chromium-driver"])
        || (apt(&["update", "-qq"])
            && apt(&["install", "-y", "-qq", "chromium", "chromium-driver"]));
    assert!(
        done,
        "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
    );
    *installed = true;
}

/// A headless Chromium session, and the chromedriver serving it (stopped on drop).
struct Browser {
    client: Client,
    driver: Child,
}

impl Browser {
    async fn start() -> Self {
        ensure_installed();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,900"
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => panic!("no WebDriver session: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Self { client, driver }
    }

    /// Saves a screenshot as `target/browser/NAME.png`.
    async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Waits until an element matching `css` exists.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no `{css}`: {error}"))
    }

    /// Waits until an element matching `css` exists, and returns its text.
    async fn text_of(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// The text of the first element matching `css` now (empty when there is none).
    async fn current_text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the text of the first element matching `css` satisfies `wanted`; returns it.
    async fn wait_for_text(&self, css: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.current_text(css).await;
            if wanted(&text) {
                return text;
            }
            if Instant::now() > deadline {
                self.screenshot("timed-out").await;
                panic!("`{css}` never showed what was expected; last: {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces what the element matching `css` holds with `text`, typed.
    async fn retype(&self, css: &str, text: &str) {
        self.element(css).await.clear().await.unwrap();
        self.type_into(css, text).await;
    }

    /// Types `text` into the element matching `css`.
    async fn type_into(&self, css: &str, text: &str) {
        self.element(css).await.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    /// Opens the console and signs in with `key`.
    async fn sign_in(&self, app: &TestApp, key: &str) {
        self.client.goto(&app.url("/")).await.unwrap();
        self.type_into("#signin-key", key).await;
        self.click("#signin-form button[type=submit]").await;
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The segment editor counts as the marketer types, underlines a typo with its suggestion
/// (applied with one click), saves the segment and previews its members.
#[tokio::test]
async fn console_segment_editor_counts_underlines_and_saves() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("seats", "NUMBER").await;
    for (id, plan, seats) in [("u1", "pro", 12), ("u2", "pro", 3), ("u3", "free", 1)] {
        app.upsert(json!({
            "externalId": id, "email": format!("{id}@example.com"), "name": format!("User {id}"),
            "attributes": {"plan": plan, "seats": seats}
        }))
        .await;
    }
    app.total_count().await;
    let browser = Browser::start().await;
    browser.sign_in(&app, ADMIN_KEY).await;

    browser.type_into("#segment-text", "plan = \"pro\"").await;
    browser
        .wait_for_text("#segment-count", |t| t == "2 contacts match")
        .await;
    browser.type_into("#segment-text", " or seats < 2").await;
    browser
        .wait_for_text("#segment-count", |t| t == "3 contacts match")
        .await;

    // Values suggested as a literal is typed, with their counts; one click completes it.
    browser.retype("#segment-text", "plan = \"p").await;
    let offered = browser
        .wait_for_text("#segment-values", |t| t.contains("pro"))
        .await;
    assert!(offered.contains("pro 2"), "{offered}");
    browser
        .click("#segment-values .value-suggestion[data-value='pro']")
        .await;
    browser
        .wait_for_text("#segment-count", |t| t == "2 contacts match")
        .await;

    // A literal that differs only in case from held values: a hint, fixed in one click.
    browser.retype("#segment-text", "plan = \"PRO\"").await;
    browser
        .wait_for_text("#segment-count", |t| t == "0 contacts match")
        .await;
    let advice = browser
        .wait_for_text("#segment-diagnostics .advice", |t| !t.is_empty())
        .await;
    assert!(advice.contains("did you mean `\"pro\"`"), "{advice}");
    browser
        .click("#segment-diagnostics .advice .apply-suggestion")
        .await;
    browser
        .wait_for_text("#segment-count", |t| t == "2 contacts match")
        .await;

    // Every problem at once, each with its one-click fix.
    browser
        .retype(
            "#segment-text",
            "plna = \"pro\" and last_seen_at within 30 days",
        )
        .await;
    browser
        .wait_for_text("#segment-count", |t| t == "2 problems")
        .await;
    let save = browser.element("#segment-save").await;
    assert_eq!(
        save.attr("disabled").await.unwrap().as_deref(),
        Some("true"),
        "Save stays closed while the text has problems"
    );
    let diagnostics = browser.text_of("#segment-diagnostics").await;
    assert!(
        !diagnostics.contains("UNKNOWN_FIELD"),
        "no API codes: {diagnostics}"
    );
    assert!(
        diagnostics.contains("did you mean `plan`") && diagnostics.contains("did you mean `30d`"),
        "{diagnostics}"
    );
    browser.click(".apply-suggestion").await;
    browser
        .wait_for_text("#segment-count", |t| t == "1 problem")
        .await;
    browser.click(".apply-suggestion").await;
    browser
        .wait_for_text("#segment-count", |t| t == "0 contacts match")
        .await;
    assert_eq!(
        browser
            .element("#segment-text")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("plan = \"pro\" and last_seen_at within 30d")
    );

    browser.retype("#segment-text", "plna = \"pro\"").await;
    let diagnostic = browser
        .wait_for_text("#segment-diagnostics .diagnostic", |t| !t.is_empty())
        .await;
    assert!(diagnostic.contains("did you mean `plan`"), "{diagnostic}");
    let underlined = browser.element("#segment-backdrop mark").await;
    assert_eq!(
        underlined.prop("textContent").await.unwrap().as_deref(),
        Some("plna")
    );
    browser
        .wait_for_text("#segment-count", |t| t == "1 problem")
        .await;
    browser.screenshot("segment-editor-typo").await;

    browser.click(".apply-suggestion").await;
    browser
        .wait_for_text("#segment-count", |t| t == "2 contacts match")
        .await;
    assert!(
        browser
            .client
            .find_all(Locator::Css("#segment-backdrop mark"))
            .await
            .unwrap()
            .is_empty(),
        "the underline goes once the text is fixed"
    );

    // The slug follows the name.
    browser.type_into("#segment-name", "Pro plan").await;
    assert_eq!(
        browser
            .element("#segment-slug")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("pro-plan")
    );
    browser.click("#segment-save").await;
    browser
        .wait_for_text("#segment-list .segment-item[data-slug='pro-plan']", |t| {
            t.contains("Pro plan")
        })
        .await;
    let saved = app
        .data("{ segment(slug: \"pro-plan\") { text count } }", json!({}))
        .await;
    assert_eq!(saved["segment"]["text"], "plan = \"pro\"");
    assert_eq!(saved["segment"]["count"], 2);

    let range = browser
        .wait_for_text("#preview-range", |t| !t.is_empty())
        .await;
    assert_eq!(range, "1–2 of 2");
    let rows = browser.text_of("#preview-table tbody").await;
    assert!(
        rows.contains("u1@example.com") && rows.contains("u2@example.com"),
        "{rows}"
    );
    assert!(!rows.contains("u3@example.com"), "{rows}");

    // Its size over the last 30 days: today's column holds its two members.
    let column = browser.element("#segment-history .column:last-child").await;
    assert_eq!(
        column.attr("data-members").await.unwrap().as_deref(),
        Some("2")
    );
    let summary = browser
        .wait_for_text("#segment-history-summary", |t| !t.is_empty())
        .await;
    // Saved over contacts that were already there: its first members entered no feed.
    assert!(summary.contains("0 entered"), "{summary}");

    // What the members look like: their spread over a chosen field, drawn from the index.
    browser
        .element("#distribution-field")
        .await
        .select_by_value("seats")
        .await
        .unwrap();
    let chart = browser
        .wait_for_text("#distribution-chart", |t| !t.is_empty())
        .await;
    assert!(chart.contains("3 – 12") || chart.contains("3 –"), "{chart}");
    browser
        .element("#distribution-field")
        .await
        .select_by_value("plan")
        .await
        .unwrap();
    let chart = browser
        .wait_for_text("#distribution-chart tr[data-label='pro']", |t| {
            !t.is_empty()
        })
        .await;
    assert!(chart.contains("pro") && chart.ends_with('2'), "{chart}");
    browser.screenshot("segment-editor").await;
    browser.close().await;
    app.stop().await;
}

/// A contact looked up by email shows its fields, identities and segments; its explanation
/// shows each clause with the contact's value.
#[tokio::test]
async fn console_contact_lookup_and_explanation() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let contact = app
        .upsert(json!({
            "externalId": "c-42", "email": "ada@example.com", "name": "Ada Lovelace",
            "attributes": {"plan": "pro"}
        }))
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    app.data(
        "mutation { upsertSegment(input: {slug: \"pro-plan\", name: \"Pro plan\", text: \"plan = \\\"pro\\\" and email exists\"}) { segment { slug } } }",
        json!({}),
    )
    .await;
    let browser = Browser::start().await;
    browser.sign_in(&app, ADMIN_KEY).await;
    browser.click("#nav a[data-page='contacts']").await;
    browser.click("#lookup summary").await;
    browser
        .element("#lookup-kind")
        .await
        .select_by_value("EMAIL")
        .await
        .unwrap();
    browser.type_into("#lookup-value", "ada@example.com").await;
    browser.click("#lookup-form button[type=submit]").await;
    browser.wait_for_text("#contact-id", |t| t == id).await;
    let fields = browser.text_of("#contact-fields").await;
    assert!(
        fields.contains("Ada Lovelace") && fields.contains("c-42"),
        "{fields}"
    );
    let identities = browser.text_of("#contact-identities").await;
    assert!(identities.contains("ada@example.com"), "{identities}");
    let segments = browser
        .wait_for_text("#contact-segments", |t| !t.is_empty())
        .await;
    assert!(segments.contains("Pro plan"), "{segments}");
    browser.screenshot("contact").await;

    browser.click("#contact-segments a").await;
    let verdict = browser
        .wait_for_text("#explain-verdict", |t| !t.is_empty())
        .await;
    assert_eq!(verdict, "The contact is a member.");
    let tree = browser.text_of("#explain-result").await;
    assert!(
        tree.contains("plan = \"pro\"") && tree.contains("value: pro"),
        "{tree}"
    );
    assert!(tree.contains("value: ada@example.com"), "{tree}");
    browser.screenshot("explain").await;

    // Explain picks its contact by searching, not by a pasted id.
    browser
        .client
        .goto(&app.url("/#/explain?slug=pro-plan"))
        .await
        .unwrap();
    browser.type_into("#explain-search", "lovelace").await;
    browser
        .wait_for_text("#explain-matches", |t| t.contains("Ada Lovelace"))
        .await;
    browser.click("#explain-matches button.match").await;
    let verdict = browser
        .wait_for_text("#explain-verdict", |t| !t.is_empty())
        .await;
    assert_eq!(verdict, "The contact is a member.");
    assert_eq!(
        browser
            .element("#explain-contact")
            .await
            .prop("value")
            .await
            .unwrap(),
        Some(id.clone())
    );
    browser.close().await;
    app.stop().await;
}

/// The contact list pages, searches as you type and opens a contact; a contact is created and
/// edited with typed inputs; every page fits 800 px and 390 px without scrolling sideways.
#[tokio::test]
async fn console_lists_searches_creates_and_edits_contacts() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("seats", "NUMBER").await;
    for n in 0..25 {
        app.upsert(
            json!({ "externalId": format!("p-{n:02}"), "name": format!("Person {n:02}"),
            "email": format!("person{n}@example.com"), "attributes": { "plan": "free" } }),
        )
        .await;
    }
    app.upsert(
        json!({ "externalId": "ada", "name": "Ada Lovelace", "email": "ada@example.com",
        "attributes": { "plan": "pro", "seats": 3 } }),
    )
    .await;
    app.total_count().await;
    let browser = Browser::start().await;
    browser.sign_in(&app, ADMIN_KEY).await;
    browser.click("#nav a[data-page='contacts']").await;
    browser
        .wait_for_text("#contact-range", |t| t == "1–20 of 26")
        .await;
    browser.click("#contacts-next").await;
    browser
        .wait_for_text("#contact-range", |t| t == "21–26 of 26")
        .await;
    browser.type_into("#contact-search", "lovelac").await;
    browser
        .wait_for_text("#contact-range", |t| t == "1–1 of 1")
        .await;
    let found = browser.text_of("#contact-table").await;
    assert!(
        found.contains("Ada Lovelace") && found.contains("pro"),
        "{found}"
    );
    browser.screenshot("contacts").await;
    browser.click("#contact-table tbody a").await;
    browser
        .wait_for_text("#contact-id", |t| !t.is_empty())
        .await;

    // Edit: a field and a typed attribute.
    browser.click("#contact-edit").await;
    let name = browser.element("#edit-name").await;
    name.clear().await.unwrap();
    name.send_keys("Ada King").await.unwrap();
    let seats = browser.element("#edit-attr-seats").await;
    seats.clear().await.unwrap();
    seats.send_keys("12").await.unwrap();
    browser.click("#edit-save").await;
    browser
        .wait_for_text("#contact-fields", |t| t.contains("Ada King"))
        .await;
    let edited = app
        .data(
            "{ contact(externalId: \"ada\") { name attributes } }",
            json!({}),
        )
        .await;
    assert_eq!(edited["contact"]["name"], "Ada King");
    assert_eq!(edited["contact"]["attributes"]["seats"], 12.0);
    assert_eq!(edited["contact"]["attributes"]["plan"], "pro");

    // Create.
    browser.click("#contacts-back").await;
    browser.click("#contact-new").await;
    browser.type_into("#edit-externalId", "new-1").await;
    browser.type_into("#edit-name", "Newcomer").await;
    browser.type_into("#edit-attr-plan", "pro").await;
    browser.click("#edit-save").await;
    browser
        .wait_for_text("#contact-fields", |t| t.contains("Newcomer"))
        .await;
    let created = app
        .data(
            "{ contact(externalId: \"new-1\") { name attributes } }",
            json!({}),
        )
        .await;
    assert_eq!(created["contact"]["name"], "Newcomer");
    assert_eq!(created["contact"]["attributes"]["plan"], "pro");

    // A small window and a phone's width: no page scrolls sideways.
    for (width, page) in [800, 390].into_iter().flat_map(|width| {
        ["segments", "contacts", "explain", "attributes", "imports"].map(|page| (width, page))
    }) {
        browser.client.set_window_size(width, 844).await.unwrap();
        browser
            .client
            .goto(&app.url(&format!("/#/{page}")))
            .await
            .unwrap();
        browser.element("#main h1").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let widths = browser
            .client
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (scroll, client) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            scroll <= client,
            "#/{page} scrolls sideways at {width} px: {scroll} > {client}"
        );
        if page == "contacts" && width == 390 {
            browser.screenshot("contacts-390px").await;
        }
    }
    browser.close().await;
    app.stop().await;
}

/// Every page passes axe-core's checks (WCAG 2 A and AA) without a serious or critical
/// violation, and the pages' controls are reachable with the keyboard.
#[tokio::test]
async fn every_console_page_passes_an_accessibility_check() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let axe = axe_source();
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let ada = app
        .upsert(json!({ "externalId": "ada", "name": "Ada", "email": "ada@example.com", "attributes": { "plan": "pro" } }))
        .await;
    app.data(
        "mutation { upsertSegment(input: {slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\"}) { segment { slug } } }",
        json!({}),
    )
    .await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.element("#signin-key").await;
    let mut findings = Vec::new();
    let mut check = |page: String, found: serde_json::Value| {
        for violation in found.as_array().unwrap() {
            findings.push(format!("{page}: {violation}"));
        }
    };
    let run = "var done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] }).then(function (r) {
          done(r.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
            .map(function (v) { return v.id + ' (' + v.impact + '): ' + v.nodes.map(function (n) { return n.target.join(' '); }).join(', '); }));
        });";
    browser.client.execute(&axe, vec![]).await.unwrap();
    check(
        "sign-in".to_owned(),
        browser.client.execute_async(run, vec![]).await.unwrap(),
    );
    browser.sign_in(&app, ADMIN_KEY).await;
    browser.element("#segment-text").await;
    let id = ada["id"].as_str().unwrap();
    for page in [
        "segments/pros".to_owned(),
        "contacts".to_owned(),
        format!("contacts/{id}"),
        format!("contacts/{id}/edit"),
        "explain".to_owned(),
        "attributes".to_owned(),
        "imports".to_owned(),
    ] {
        browser
            .client
            .goto(&app.url(&format!("/#/{page}")))
            .await
            .unwrap();
        browser.element("#main h1, #main h2").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        browser.client.execute(&axe, vec![]).await.unwrap();
        check(
            page,
            browser.client.execute_async(run, vec![]).await.unwrap(),
        );
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));

    // The keyboard reaches the segment editor's text from the page's start.
    browser.client.goto(&app.url("/#/segments")).await.unwrap();
    browser.element("#segment-text").await;
    let mut reached = false;
    for _ in 0..20 {
        browser
            .client
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        let focused = browser
            .client
            .execute(
                "return document.activeElement && document.activeElement.id;",
                vec![],
            )
            .await
            .unwrap();
        if focused == "segment-text" {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the segment text");
    browser.close().await;
    app.stop().await;
}

/// A CSV goes through a dry run (row errors listed, nothing written), then the import.
#[tokio::test]
async fn console_imports_a_csv_after_a_dry_run() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("seats", "NUMBER").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "external_id,email,name,plan,seats\nu1,u1@example.com,One,pro,1\nu2,not-an-email,Two,free,many\nu3,u3@example.com,Three,free,3\n",
    )
    .unwrap();
    let browser = Browser::start().await;
    browser.sign_in(&app, ADMIN_KEY).await;
    browser.click("#nav a[data-page='imports']").await;
    browser
        .type_into("#import-file", csv.to_str().unwrap())
        .await;
    browser.click("#import-dry-run").await;
    let summary = browser
        .wait_for_text("#import-summary", |t| !t.is_empty())
        .await;
    assert_eq!(
        summary,
        "Dry run: 2 created, 0 updated, 0 unchanged, 1 failed, 0 conflicts (nothing written)."
    );
    let errors = browser.text_of("#import-errors").await;
    // In words, without the API's codes, every problem of the row.
    assert!(
        errors.contains("not-an-email")
            && errors.contains("many")
            && errors.contains('3')
            && !errors.contains("INVALID_INPUT"),
        "{errors}"
    );
    assert_eq!(app.total_count().await, 0, "a dry run writes nothing");

    browser.click("#import-run").await;
    browser
        .wait_for_text("#import-summary", |t| t.starts_with("Done:"))
        .await;
    assert_eq!(app.total_count().await, 2);
    let jobs = browser
        .wait_for_text("#import-jobs", |t| !t.is_empty())
        .await;
    assert!(jobs.contains("COMPLETED"), "{jobs}");
    browser.screenshot("import").await;
    browser.close().await;
    app.stop().await;
}

/// The console offers only what the key's scopes allow, and refuses a bad key.
#[tokio::test]
async fn console_shows_only_what_the_key_may_do() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    let (reader, _) = app.create_key(&["segments:read"], json!(null)).await;
    let browser = Browser::start().await;

    browser.sign_in(&app, "not-a-key").await;
    let refusal = browser
        .wait_for_text("#signin-error", |t| !t.is_empty())
        .await;
    assert_eq!(refusal, "That key is not valid (or was revoked).");

    browser.element("#signin-key").await.clear().await.unwrap();
    browser.type_into("#signin-key", &reader).await;
    browser.click("#signin-form button[type=submit]").await;
    let who = browser.wait_for_text("#who", |t| !t.is_empty()).await;
    assert!(who.ends_with("segments:read"), "{who}");
    assert!(
        who.starts_with("test key"),
        "the key's name, not its id: {who}"
    );
    browser.element("#segment-text").await;
    let mut pages = Vec::new();
    for link in browser
        .client
        .find_all(Locator::Css("#nav a"))
        .await
        .unwrap()
    {
        pages.push(link.attr("data-page").await.unwrap().unwrap());
    }
    assert_eq!(pages, ["segments", "graphiql"]);
    assert!(
        browser
            .client
            .find_all(Locator::Css("#segment-save"))
            .await
            .unwrap()
            .is_empty(),
        "no save button without segments:write"
    );
    browser.screenshot("read-only-key").await;
    browser.close().await;
    app.stop().await;
}

/// GraphiQL works as a newcomer would use it: the page loads from the binary, the key goes
/// into the field above the editor, and the docs explorer lists the query root.
#[tokio::test]
async fn graphiql_lists_the_schema_once_the_key_is_given() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/graphql")).await.unwrap();
    browser.type_into("#api-key", ADMIN_KEY).await;
    // GraphiQL starts again for a new key (after a pause in typing), closing the explorer: the
    // button is pressed again until the explorer shows the schema.
    let deadline = Instant::now() + PATIENCE;
    let docs = loop {
        if let Ok(show) = browser
            .client
            .find(Locator::Css(
                "button[aria-label='Show Documentation Explorer']",
            ))
            .await
        {
            let _ = show.click().await;
        }
        let docs = browser.current_text(".graphiql-doc-explorer").await;
        if docs.contains("Mutation") || Instant::now() > deadline {
            break docs;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    browser.screenshot("graphiql-docs").await;
    assert!(docs.contains("Query"), "{docs}");
    assert!(docs.contains("Mutation"), "{docs}");
    assert!(!docs.contains("MutationRoot"), "{docs}");
    browser.close().await;
    app.stop().await;
}
