//! Transparent huge pages off for the process. mimalloc asks the kernel for huge pages
//! (`MADV_HUGEPAGE`) and returns memory it no longer uses; the next use faults a fresh 2 MiB page
//! in, which the kernel zeroes whole. Under an import that churn cost 40% of the indexer's CPU
//! (`perf`: `clear_page_erms` under `do_huge_pmd_anonymous_page`); with 4 KiB pages the index
//! share of `benches/import_throughput` went from 155 to 94 core-µs per row (BENCHMARKS.md).

/// Turns transparent huge pages off for this process and its children (Linux; elsewhere
/// nothing happens). Returns whether the kernel accepted it.
pub fn turn_off_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE only reads its integer arguments.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}
