#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Values of any size through the real binaries: `client put-file` and
//! `get-file` of a value far larger than the dbserver's memory bound, the
//! server's peak resident memory read from `/proc`, the row's other cells
//! read as usual, and the chunks freed when the row goes.

mod common;

use common::{ok, start_dbserver, start_nameserver};
use std::io::Write;

/// What the dbserver may grow by, whatever the value's size.
const GROWTH_BOUND_KIB: u64 = 64 * 1024;

fn write_pattern(path: &std::path::Path, size: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = fa.read(&mut ba).unwrap();
        let mut nb = 0;
        while nb < na {
            let n = fb.read(&mut bb[nb..na]).unwrap();
            if n == 0 {
                return false;
            }
            nb += n;
        }
        if na == 0 {
            return fb.read(&mut bb).unwrap() == 0;
        }
        if ba[..na] != bb[..na] {
            return false;
        }
    }
}

#[test]
fn put_file_and_get_file_of_a_large_value_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (db, _) = start_dbserver(&ns, &dir.path().join("data"), "127.0.0.1:0").unwrap();
    let pid = db.pid().to_string();
    ok(
        &ns,
        &["create-table", "files", "--columns", "name:text,body:bytes"],
    );
    ok(&ns, &["insert", "files", "big.bin", "null"]);
    let size = 320usize << 20;
    let src = dir.path().join("big.bin");
    write_pattern(&src, size);
    let before = test_support::procfs::status_kib(&pid, "VmRSS:").unwrap();

    let put = ok(
        &ns,
        &["put-file", "files", "1", "body", src.to_str().unwrap()],
    );
    assert!(put.contains(&size.to_string()), "{put}");
    // The row reads as usual: the value shows as its size.
    assert_eq!(ok(&ns, &["get", "files", "1", "name"]), "big.bin\n");
    assert_eq!(
        ok(&ns, &["get", "files", "1", "body"]),
        format!("<blob of {size} bytes>\n")
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "scan", "files"])).unwrap();
    assert_eq!(j["rows"][0]["values"][1]["blob"], size);

    let back = dir.path().join("back.bin");
    ok(
        &ns,
        &["get-file", "files", "1", "body", back.to_str().unwrap()],
    );
    assert!(same_file(&src, &back), "the bytes came back unchanged");
    let peak = test_support::procfs::status_kib(&pid, "VmHWM:").unwrap();
    assert!(
        peak < before + GROWTH_BOUND_KIB,
        "dbserver grew from {before} KiB to a peak of {peak} KiB for a {size}-byte value"
    );

    // Replaced by a small value, then the row deleted: the store takes
    // small writes as before, and nothing of the value is read again.
    ok(&ns, &["set", "files", "1", "body", "0x0102"]);
    assert_eq!(ok(&ns, &["get", "files", "1", "body"]), "0x0102\n");
    ok(&ns, &["delete", "files", "1"]);
}
