//! The service's metrics, in one registry per service instance (so that tests running many
//! instances in one process each read their own), served as OpenMetrics text at `/metrics`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route as declared (`/graphql`, `/v1/contacts/import`), never the raw path.
    pub route: String,
    /// The GraphQL operation's type and first root field (`query contacts`; `-` for other
    /// routes), never a name the client chose.
    pub operation: String,
}

/// Labels of a response status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The route as declared.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// A label naming a kind (of evaluation, outcome, refusal).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// A label naming a background task.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabel {
    /// The task (`webhook-dispatcher`, `webhook-attempt`, `indexer`, `catalogue-follower`).
    pub task: String,
}

/// Every metric the service records.
pub struct Metrics {
    registry: Registry,
    request_duration: Family<RequestLabels, Histogram>,
    responses: Family<StatusLabels, Counter>,
    segment_evaluation: Family<KindLabel, Histogram>,
    import_rows: Family<KindLabel, Counter>,
    store_errors: Counter,
    rate_limited: Family<KindLabel, Counter>,
    webhook_attempts: Family<KindLabel, Counter>,
    task_panics: Family<TaskLabel, Counter>,
    index_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    index_lag_changes: Gauge,
    index_states: Family<KindLabel, Gauge>,
    /// Serialises rendering (the registry is encoded as a whole).
    render_lock: Mutex<()>,
    /// Operation labels seen, bounded (the schema bounds them already; this is a backstop).
    operations: Mutex<std::collections::HashSet<String>>,
}

/// Most distinct operation labels kept; later ones count as `other`.
const MAX_OPERATIONS: usize = 500;

fn latency_histogram() -> Histogram {
    // 50 µs to about 13 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("qwry");
        let request_duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by route and GraphQL operation",
            request_duration.clone(),
        );
        let responses = Family::<StatusLabels, Counter>::default();
        registry.register(
            "http_responses",
            "Responses by route and status",
            responses.clone(),
        );
        let segment_evaluation = Family::<KindLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "segment_evaluation_seconds",
            "Time the segment index takes per evaluation (count, page, search)",
            segment_evaluation.clone(),
        );
        let import_rows = Family::<KindLabel, Counter>::default();
        registry.register(
            "import_rows",
            "Import rows by outcome (created, updated, unchanged, failed, conflict)",
            import_rows.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Store failures reported to clients as INTERNAL or UNAVAILABLE",
            store_errors.clone(),
        );
        let rate_limited = Family::<KindLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429, by reason (key, address)",
            rate_limited.clone(),
        );
        let webhook_attempts = Family::<KindLabel, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, retry, failed, disabled)",
            webhook_attempts.clone(),
        );
        let task_panics = Family::<TaskLabel, Counter>::default();
        registry.register(
            "task_panics",
            "Panics caught in background work (the task went on or was started again), by task",
            task_panics.clone(),
        );
        let index_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "index_lag_seconds",
            "Age of the oldest change not yet in the segment index (at the last scrape)",
            index_lag_seconds.clone(),
        );
        let index_lag_changes = Gauge::default();
        registry.register(
            "index_lag_changes",
            "Change-log entries not yet in the segment index (at the last scrape)",
            index_lag_changes.clone(),
        );
        let index_states = Family::<KindLabel, Gauge>::default();
        registry.register(
            "index_states",
            "Contact states the indexer applied since start, by source: payload (handed over by this instance's writes) or store (read back) (at the last scrape)",
            index_states.clone(),
        );
        Self {
            registry,
            request_duration,
            responses,
            segment_evaluation,
            import_rows,
            store_errors,
            rate_limited,
            webhook_attempts,
            task_panics,
            index_lag_seconds,
            index_lag_changes,
            index_states,
            render_lock: Mutex::new(()),
            operations: Mutex::default(),
        }
    }

    /// Records one answered request.
    pub fn request(&self, route: &str, operation: &str, status: u16, took: Duration) {
        let operation = self.operation_label(operation);
        self.request_duration
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                operation,
            })
            .observe(took.as_secs_f64());
        self.responses
            .get_or_create(&StatusLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// `operation` as a label: a schema-drawn label (`query contacts+`) among the first
    /// [`MAX_OPERATIONS`] seen, else `other`.
    fn operation_label(&self, operation: &str) -> String {
        let plain = operation.len() <= 80
            && operation.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ' | '+' | '(' | ')')
            });
        if !plain {
            return "other".to_owned();
        }
        let mut seen = self
            .operations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(operation) || seen.len() < MAX_OPERATIONS {
            seen.insert(operation.to_owned());
            operation.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// Records one evaluation of the segment index.
    pub fn segment_evaluation(&self, kind: &str, took: Duration) {
        self.segment_evaluation
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts import rows settled with `outcome`.
    pub fn import_rows(&self, outcome: &str, rows: u64) {
        if rows > 0 {
            self.import_rows
                .get_or_create(&KindLabel {
                    kind: outcome.to_owned(),
                })
                .inc_by(rows);
        }
    }

    /// Counts a store failure.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// Counts a request refused for its rate (`key` or `address`).
    pub fn rate_limited(&self, reason: &str) {
        self.rate_limited
            .get_or_create(&KindLabel {
                kind: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a webhook delivery attempt that ended with `outcome`.
    pub fn webhook_attempt(&self, outcome: &str) {
        self.webhook_attempts
            .get_or_create(&KindLabel {
                kind: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a panic caught in background task `task`.
    pub fn task_panic(&self, task: &str) {
        self.task_panics
            .get_or_create(&TaskLabel {
                task: task.to_owned(),
            })
            .inc();
    }

    /// Sets how far the segment index is behind the store.
    pub fn index_lag(&self, seconds: f64, changes: u64) {
        self.index_lag_seconds.set(seconds);
        self.index_lag_changes
            .set(i64::try_from(changes).unwrap_or(i64::MAX));
    }

    /// Sets how many contact states the indexer applied from payloads and from the store.
    pub fn index_states(&self, from_payload: u64, read_back: u64) {
        for (kind, value) in [("payload", from_payload), ("store", read_back)] {
            self.index_states
                .get_or_create(&KindLabel {
                    kind: kind.to_owned(),
                })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let _guard = self
            .render_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_render_with_their_names_and_labels() {
        let metrics = Metrics::new();
        metrics.request("/graphql", "query contacts", 200, Duration::from_millis(3));
        metrics.request("/graphql", "query contacts", 200, Duration::from_millis(5));
        metrics.import_rows("created", 7);
        metrics.rate_limited("address");
        metrics.index_lag(0.25, 3);
        metrics.index_states(7, 2);
        let text = metrics.render();
        assert!(
            text.contains("qwry_http_responses_total{route=\"/graphql\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "qwry_http_request_duration_seconds_count{route=\"/graphql\",operation=\"query contacts\"} 2"
        ), "{text}");
        assert!(
            text.contains("qwry_import_rows_total{kind=\"created\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("qwry_rate_limited_total{kind=\"address\"} 1"),
            "{text}"
        );
        assert!(text.contains("qwry_index_lag_changes 3"), "{text}");
        assert!(
            text.contains("qwry_index_states{kind=\"payload\"} 7"),
            "{text}"
        );
    }
}
