//! What operators see: metrics (`/metrics`) and logs (one access-log line per request, JSON or
//! text, dependency chatter filtered), and the supervision of background work, which reports
//! through both.

mod logging;
mod metrics;
pub mod supervise;

pub use logging::{LogFormat, init_logging};
pub use metrics::Metrics;
