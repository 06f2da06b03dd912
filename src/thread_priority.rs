//! Background work yields to requests. The store's compactions and the index's merges run for
//! minutes after a bulk load; on a small machine a request that waits behind them for a time
//! slice misses its latency target. These threads run at the lowest CPU priority (nice 19), so
//! they use whatever the requests leave.

/// The nice value of background threads (the lowest priority short of `SCHED_IDLE`).
const BACKGROUND_NICE: libc::c_int = 19;

/// Lowers to [`BACKGROUND_NICE`] every thread of this process whose name starts with `prefix`
/// (Linux; elsewhere nothing happens); returns how many it lowered.
pub fn lower_threads_named(prefix: &str) -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.starts_with(prefix))
            })
            .filter_map(|task| task.file_name().to_str()?.parse::<libc::id_t>().ok())
            // SAFETY: setpriority only reads its integer arguments; on Linux, PRIO_PROCESS
            // with a thread id sets that thread's nice value.
            .filter(
                |&tid| unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE) } == 0,
            )
            .count()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = prefix;
        0
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_of(tid: &str) -> i64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Field 19 (nice), counted after the command name, which ends at the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[16].parse().unwrap()
    }

    #[test]
    fn lowers_the_named_threads_and_no_others() {
        let (tid_sender, tid_receiver) = std::sync::mpsc::channel();
        let (stop_sender, stop_receiver) = std::sync::mpsc::channel::<()>();
        let background = std::thread::Builder::new()
            .name("qwry-bg-probe".to_owned())
            .spawn(move || {
                // SAFETY: gettid has no arguments and cannot fail.
                tid_sender.send(unsafe { libc::gettid() }).unwrap();
                stop_receiver.recv().ok();
            })
            .unwrap();
        let tid = tid_receiver.recv().unwrap().to_string();
        // SAFETY: as above.
        let own = unsafe { libc::gettid() }.to_string();
        assert_eq!(nice_of(&tid), 0);

        assert_eq!(lower_threads_named("qwry-bg-"), 1);

        assert_eq!(nice_of(&tid), i64::from(BACKGROUND_NICE));
        assert_eq!(nice_of(&own), 0);
        stop_sender.send(()).unwrap();
        background.join().unwrap();
    }
}
