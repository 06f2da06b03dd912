//! Log output: text or JSON lines on stderr, colours only on a terminal, and the chatter of
//! dependencies (tantivy's merges, SurrealDB's internals) kept at warnings unless asked for.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Directives added after the base level unless the filter names these targets itself.
const QUIET_DEPENDENCIES: &[&str] = &[
    "tantivy=warn",
    "surrealdb=warn",
    "surrealdb_core=warn",
    "surrealkv=warn",
    "hyper=warn",
    "tower_http=warn",
];

/// The filter for `directives` (`RUST_LOG` syntax): dependency targets stay at warnings
/// unless the directives mention them.
pub fn filter(directives: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    let mut all = directives.to_owned();
    for quiet in QUIET_DEPENDENCIES {
        let target = quiet.split('=').next().unwrap_or_default();
        if !directives.contains(target) {
            all.push(',');
            all.push_str(quiet);
        }
    }
    EnvFilter::try_new(all)
}

/// Installs the global subscriber: `directives` filter what is logged, in `format`.
pub fn init_logging(
    directives: &str,
    format: LogFormat,
) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = filter(directives)?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_stay_quiet_unless_named() {
        let quiet = filter("info").unwrap().to_string();
        assert!(quiet.contains("tantivy=warn"), "{quiet}");
        let loud = filter("info,tantivy=debug").unwrap().to_string();
        assert!(
            loud.contains("tantivy=debug") && !loud.contains("tantivy=warn"),
            "{loud}"
        );
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("yaml"), None);
    }
}
