//! What a service process costs the machine: its memory (from Linux `/proc`), the size of its
//! data on disk, and the time and peak memory of one of its commands (`backup`, `check`, ...).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Resident memory of process `pid` now and at its peak, in MiB (`VmRSS`, `VmHWM`).
pub fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Bytes of the files under `path`, walked recursively.
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map_or(0, |meta| meta.len());
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_bytes(&entry.path()),
            _ => entry.metadata().map_or(0, |meta| meta.len()),
        })
        .sum()
}

/// Prints the size of each directory under `dir`, in MiB and in bytes per contact.
pub fn report_disk(dir: &Path, contacts: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let bytes = disk_bytes(&entry.path());
        total += bytes;
        println!(
            "| disk: `{}` | {:.0} MiB | {:.0} bytes per contact |",
            entry.file_name().to_string_lossy(),
            bytes as f64 / 1_048_576.0,
            bytes as f64 / contacts as f64
        );
    }
    println!(
        "| disk: all | {:.0} MiB | {:.0} bytes per contact |",
        total as f64 / 1_048_576.0,
        total as f64 / contacts as f64
    );
}

/// What one command took: its wall time, its peak resident memory (sampled every 50 ms, so a
/// peak shorter than that may be missed) and whether it succeeded.
pub struct CommandCost {
    pub took: Duration,
    pub peak_mib: f64,
    pub succeeded: bool,
}

/// Runs `command` to its end, sampling its memory.
pub fn run_measured(command: &mut Command) -> CommandCost {
    let started = Instant::now();
    let mut child = command.spawn().expect("command starts");
    let mut peak_mib: f64 = 0.0;
    let status = loop {
        if let Some((_, hwm)) = memory_mib(child.id()) {
            peak_mib = peak_mib.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("command waits") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    CommandCost {
        took: started.elapsed(),
        peak_mib,
        succeeded: status.success(),
    }
}
