//! What operators see: metrics (`/metrics`) and logs (one access-log line per request, JSON or
//! text, dependency chatter filtered).

mod logging;
mod metrics;

pub use logging::{LogFormat, init_logging};
pub use metrics::Metrics;
