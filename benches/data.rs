//! How fast the CSV reader loads a large table, and how much memory it takes: a generated table of
//! about 200 MB (20 float columns and a target, ~1 million rows) is written to a temporary file, then
//! read by `nabla::data::csv::load`. Prints MB/s and the peak resident memory the load added, against
//! the table's size as float32 (Linux: from /proc/self/status).
//!
//! `cargo bench --bench data` (`NABLA_CSV_MB=50` for a smaller table)

use std::io::Write;
use std::time::Instant;

/// Peak and current resident memory of this process in bytes (`VmHWM`, `VmRSS`), where Linux says.
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets the peak (`VmHWM`) to the current resident size (Linux ≥ 4.0: write 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() -> std::io::Result<()> {
    let target_mb: f64 = std::env::var("NABLA_CSV_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200.0);
    let path = std::env::temp_dir().join(format!("nabla-bench-{}.csv", std::process::id()));
    let columns = 20;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let header: Vec<String> = (0..columns).map(|c| format!("x{c}")).collect();
        writeln!(out, "{},y", header.join(","))?;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut written = 0usize;
        while (written as f64) < target_mb * 1e6 {
            let mut line = String::with_capacity(256);
            for _ in 0..columns {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = (state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0;
                line.push_str(&format!("{v:.5},"));
            }
            line.push_str(&format!("{:.3}\n", (state % 1000) as f64 / 7.0));
            written += line.len();
            out.write_all(line.as_bytes())?;
        }
    }
    let bytes = std::fs::metadata(&path)?.len();
    let (_, before) = memory().unwrap_or((0, 0));
    reset_peak();
    let started = Instant::now();
    let (set, _) = nabla::data::csv::load(&path, &["y".to_string()]).expect("the table loads");
    let seconds = started.elapsed().as_secs_f64();
    let floats = (set.len() * (set.width() + 1) * 4) as f64;
    println!(
        "CSV load: {:.1} MB ({} rows × {} columns) in {seconds:.2} s: {:.0} MB/s",
        bytes as f64 / 1e6,
        set.len(),
        columns + 1,
        bytes as f64 / 1e6 / seconds
    );
    if let Some((peak, _)) = memory() {
        let added = peak.saturating_sub(before) as f64;
        println!(
            "memory: peak {:.1} MB above the start, {:.2}× the {:.1} MB of float32 data",
            added / 1e6,
            added / floats,
            floats / 1e6
        );
    }
    drop(set);
    std::fs::remove_file(&path)
}
