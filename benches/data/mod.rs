//! Seeded generator of realistic contacts for benchmarks: 20 custom attributes of every type,
//! skewed value distributions, missing values, dates around `now`.
//!
//! The same seed always yields the same contacts, so figures are comparable across runs.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use qwry_contacts::domain::{
    AttributeName, AttributeValue, Contact, ContactFields, Email, Text, WorkspaceId,
};
use qwry_segment::{Catalog, FieldType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The attributes every generated workspace declares.
pub const ATTRIBUTES: &[(&str, FieldType)] = &[
    ("plan", FieldType::String),
    ("country", FieldType::String),
    ("city", FieldType::String),
    ("language", FieldType::String),
    ("source", FieldType::String),
    ("industry", FieldType::String),
    ("ltv", FieldType::Number),
    ("orders", FieldType::Number),
    ("nps", FieldType::Number),
    ("company_size", FieldType::Number),
    ("churn_risk", FieldType::Number),
    ("vip", FieldType::Bool),
    ("beta", FieldType::Bool),
    ("newsletter", FieldType::Bool),
    ("trial_ends", FieldType::Datetime),
    ("signup_at", FieldType::Datetime),
    ("last_order_at", FieldType::Datetime),
    ("tags", FieldType::StringList),
    ("interests", FieldType::StringList),
    ("channels", FieldType::StringList),
];

const PLANS: &[&str] = &[
    "free",
    "free",
    "free",
    "starter",
    "pro",
    "pro",
    "enterprise",
];
const COUNTRIES: &[&str] = &[
    "DE", "FR", "US", "GB", "ES", "IT", "NL", "SE", "PL", "BR", "IN", "JP", "CA", "AU", "AT", "CH",
    "BE", "DK", "NO", "FI",
];
const LANGUAGES: &[&str] = &["en", "de", "fr", "es", "it", "nl", "sv", "pl", "pt", "ja"];
const SOURCES: &[&str] = &[
    "ads", "organic", "referral", "partner", "event", "outbound", "chat", "import",
];
const INDUSTRIES: &[&str] = &[
    "retail",
    "saas",
    "finance",
    "health",
    "travel",
    "education",
    "media",
    "logistics",
];
const TAGS: &[&str] = &[
    "vip",
    "beta",
    "churned",
    "trial",
    "webinar",
    "ebook",
    "demo",
    "enterprise-lead",
    "partner",
    "nps-promoter",
    "nps-detractor",
    "support-heavy",
    "upsell",
    "renewal",
    "at-risk",
    "champion",
    "newsletter",
    "event-2026",
    "mobile",
    "desktop",
    "api",
    "sso",
    "gdpr",
    "invoice",
    "card",
    "annual",
    "monthly",
    "discount",
    "referral",
    "ambassador",
];
const CHANNELS: &[&str] = &["email", "sms", "whatsapp", "chat", "push", "phone"];
const NAMES: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Linus",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "acme.io",
    "mail.test",
    "corp.example",
    "shop.example",
];

/// The catalogue of the generated attributes.
pub struct BenchCatalog;

impl Catalog for BenchCatalog {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        ATTRIBUTES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
    fn attribute_names(&self) -> Vec<String> {
        ATTRIBUTES.iter().map(|(n, _)| n.to_string()).collect()
    }
    fn segment_exists(&self, slug: &str) -> bool {
        slug == "pro-in-eu"
    }
}

/// The moment generated dates are relative to.
pub fn bench_now() -> DateTime<Utc> {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

fn pick<'a>(rng: &mut StdRng, values: &[&'a str]) -> &'a str {
    values[rng.random_range(0..values.len())]
}

fn some_of(rng: &mut StdRng, values: &[&str], max: usize) -> Vec<String> {
    let count = rng.random_range(0..=max);
    let mut picked: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let value = pick(rng, values).to_owned();
        if !picked.contains(&value) {
            picked.push(value);
        }
    }
    picked
}

/// `count` contacts of `workspace`, from `seed`.
pub fn contacts(workspace: &WorkspaceId, count: usize, seed: u64) -> Vec<Contact> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = bench_now();
    (0..count)
        .map(|n| {
            let mut attributes = BTreeMap::new();
            let mut set = |name: &str, value: AttributeValue| {
                attributes.insert(AttributeName::parse(name).unwrap(), value);
            };
            let days_ago = |rng: &mut StdRng, max: i64| {
                now - TimeDelta::seconds(rng.random_range(0..max * 86_400))
            };
            set("plan", AttributeValue::String(pick(&mut rng, PLANS).into()));
            set(
                "country",
                AttributeValue::String(pick(&mut rng, COUNTRIES).into()),
            );
            set(
                "city",
                AttributeValue::String(format!("city-{}", rng.random_range(0..200))),
            );
            set(
                "language",
                AttributeValue::String(pick(&mut rng, LANGUAGES).into()),
            );
            if rng.random_bool(0.8) {
                set(
                    "source",
                    AttributeValue::String(pick(&mut rng, SOURCES).into()),
                );
            }
            if rng.random_bool(0.6) {
                set(
                    "industry",
                    AttributeValue::String(pick(&mut rng, INDUSTRIES).into()),
                );
            }
            let ltv: f64 = rng.random_range(0.0f64..1.0).powi(3) * 10_000.0;
            set("ltv", AttributeValue::Number((ltv * 100.0).round() / 100.0));
            set(
                "orders",
                AttributeValue::Number(f64::from(rng.random_range(0u32..60))),
            );
            if rng.random_bool(0.4) {
                set(
                    "nps",
                    AttributeValue::Number(f64::from(rng.random_range(0u32..=10))),
                );
            }
            set(
                "company_size",
                AttributeValue::Number(f64::from(rng.random_range(1u32..5000))),
            );
            set(
                "churn_risk",
                AttributeValue::Number(rng.random_range(0.0..1.0)),
            );
            set("vip", AttributeValue::Bool(rng.random_bool(0.05)));
            set("beta", AttributeValue::Bool(rng.random_bool(0.2)));
            set("newsletter", AttributeValue::Bool(rng.random_bool(0.5)));
            if rng.random_bool(0.3) {
                set(
                    "trial_ends",
                    AttributeValue::Datetime(
                        now + TimeDelta::seconds(rng.random_range(-30 * 86_400..30 * 86_400)),
                    ),
                );
            }
            set(
                "signup_at",
                AttributeValue::Datetime(days_ago(&mut rng, 1_000)),
            );
            if rng.random_bool(0.7) {
                set(
                    "last_order_at",
                    AttributeValue::Datetime(days_ago(&mut rng, 365)),
                );
            }
            set(
                "tags",
                AttributeValue::StringList(some_of(&mut rng, TAGS, 4)),
            );
            set(
                "interests",
                AttributeValue::StringList(some_of(&mut rng, INDUSTRIES, 3)),
            );
            set(
                "channels",
                AttributeValue::StringList(some_of(&mut rng, CHANNELS, 3)),
            );
            let name = pick(&mut rng, NAMES);
            let email = format!("{}.{n}@{}", name.to_lowercase(), pick(&mut rng, DOMAINS));
            let fields = ContactFields {
                email: Some(Email::parse(&email).unwrap()),
                name: Some(Text::parse("name", name).unwrap()),
                attributes,
                last_seen_at: rng.random_bool(0.9).then(|| days_ago(&mut rng, 120)),
                ..ContactFields::default()
            };
            Contact::new(workspace.clone(), fields, days_ago(&mut rng, 1_000))
        })
        .collect()
}
