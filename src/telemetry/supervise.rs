//! Background work that survives its own bugs: a panic in a task's loop, or in one unit of its
//! work (one webhook attempt), is caught, logged and counted (`qwry_task_panics_total`), and
//! the loop is started again after a pause, so one bad input never stops the rest.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tracing::error;

use super::Metrics;

/// Pause before a task that panicked starts again, so a panic on every start does not spin.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Spawns the loop `start` makes, and starts it again whenever it panics; the task ends when a
/// loop returns (its shutdown).
pub fn spawn_supervised<Start, Loop>(
    name: &'static str,
    metrics: Arc<Metrics>,
    mut start: Start,
) -> JoinHandle<()>
where
    Start: FnMut() -> Loop + Send + 'static,
    Loop: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match AssertUnwindSafe(start()).catch_unwind().await {
                Ok(()) => return,
                Err(panic) => {
                    record(name, &metrics, &panic);
                    tokio::time::sleep(RESTART_DELAY).await;
                }
            }
        }
    })
}

/// Runs one unit of work; a panic is logged and counted as `name`'s and comes back as `None`.
pub async fn catch_panic<T>(
    name: &'static str,
    metrics: &Metrics,
    work: impl Future<Output = T>,
) -> Option<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(done) => Some(done),
        Err(panic) => {
            record(name, metrics, &panic);
            None
        }
    }
}

fn record(name: &'static str, metrics: &Metrics, panic: &Box<dyn Any + Send>) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    error!(task = name, panic = %message, "background work panicked; it goes on");
    metrics.task_panic(name);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_loop_that_panics_is_started_again_and_counted() {
        let metrics = Arc::new(Metrics::new());
        let starts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&starts);
        let task = spawn_supervised("flaky", Arc::clone(&metrics), move || {
            let starts = Arc::clone(&counted);
            async move {
                if starts.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("bad input");
                }
            }
        });
        task.await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        let text = metrics.render();
        assert!(
            text.contains("qwry_task_panics_total{task=\"flaky\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn one_unit_that_panics_leaves_the_others() {
        let metrics = Metrics::new();
        let mut done = Vec::new();
        for unit in 0..3 {
            let outcome = catch_panic("unit", &metrics, async move {
                assert_ne!(unit, 1, "unit 1 is broken");
                unit
            })
            .await;
            done.push(outcome);
        }
        assert_eq!(done, [Some(0), None, Some(2)]);
    }
}
