//! The `process_*` series every Prometheus client exports, read from /proc at scrape time.

use super::text::Text;

/// Writes CPU time, memory, descriptors and start time of this process (Linux /proc).
pub fn render(t: &mut Text) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of proc(5), so field n is f[n - 3].
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = ticks_per_second();
    let cpu = (field(14) + field(15)) as f64 / ticks;
    t.family(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        "counter",
    );
    t.sample_f64("process_cpu_seconds_total", "", cpu);
    t.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge");
    t.sample("process_virtual_memory_bytes", "", field(23));
    t.family(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        "gauge",
    );
    t.sample("process_resident_memory_bytes", "", field(24) * page_size());
    if let Some(boot) = boot_time() {
        t.family(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
        );
        t.sample_f64("process_start_time_seconds", "", boot + field(22) as f64 / ticks);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        t.family("process_open_fds", "Number of open file descriptors.", "gauge");
        t.sample("process_open_fds", "", fds.count() as u64);
    }
    if let Some(max) = max_fds() {
        t.family("process_max_fds", "Maximum number of open file descriptors.", "gauge");
        t.sample("process_max_fds", "", max);
    }
}

fn boot_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

fn max_fds() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn ticks_per_second() -> f64 {
    #[allow(unsafe_code)]
    // SAFETY: sysconf takes an integer and returns one; it touches no memory of ours.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    #[allow(unsafe_code)]
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}
