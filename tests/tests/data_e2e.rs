#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The data manager through the real binaries: a `nameserver`, two
//! `dbserver`s registered as `db1` and `db2` (each with its own data
//! directory) and `client data put|ls|get|mv|rm` runs. Data moved between the
//! servers, sticky data that refuses to move, the lifetime of every
//! persistence mode, stored data surviving SIGKILL and SIGTERM, one stored
//! value referenced from many rows (and still read after it moved), and bad
//! input.
//!
//! The binaries are looked up next to this test executable (see `common`);
//! build them first with `cargo build --workspace --bins`.

mod common;

use common::{Proc, WAIT, fails, ok, restart_dbserver, start_named_dbserver, start_nameserver};
use rpc_core::DataId;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A name server and two database servers, `db1` and `db2`, with their
/// data directories under one temporary directory.
struct Cluster {
    ns: String,
    db1_addr: String,
    // Dropped in this order: the servers, their name server, their files.
    db1: Proc,
    _db2: Proc,
    _ns: Proc,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (ns_proc, ns) = start_nameserver();
        let (db1, db1_addr) =
            start_named_dbserver(&ns, "db1", &dir.path().join("db1"), "127.0.0.1:0").unwrap();
        let (db2, _) =
            start_named_dbserver(&ns, "db2", &dir.path().join("db2"), "127.0.0.1:0").unwrap();
        Cluster {
            ns,
            db1_addr,
            db1,
            _db2: db2,
            _ns: ns_proc,
            dir,
        }
    }

    /// The `--data` directory of `node`.
    fn data_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join(node)
    }

    /// A path for a test file in the temporary directory.
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The names of the files `node`'s data manager keeps for `id` in its
    /// `items/` directory (`<simple id>.bin`, `<simple id>.meta`), sorted.
    fn item_files(&self, node: &str, id: &str) -> Vec<String> {
        let items = self.data_dir(node).join("data").join("items");
        let simple = id.replace('-', "");
        let mut names: Vec<String> = std::fs::read_dir(&items)
            .unwrap_or_else(|e| panic!("{}: {e}", items.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&simple))
            .collect();
        names.sort();
        names
    }

    /// Asserts that `node` stores `id` on disk: both of its files, the
    /// bytes of `len`.
    fn assert_stored_on(&self, node: &str, id: &str, len: u64) {
        let simple = id.replace('-', "");
        assert_eq!(
            self.item_files(node, id),
            [format!("{simple}.bin"), format!("{simple}.meta")],
            "{node} should store {id}"
        );
        let bin = self
            .data_dir(node)
            .join("data")
            .join("items")
            .join(format!("{simple}.bin"));
        assert_eq!(std::fs::metadata(bin).unwrap().len(), len);
    }

    fn assert_not_stored_on(&self, node: &str, id: &str) {
        let left = self.item_files(node, id);
        assert!(left.is_empty(), "{node} still holds {left:?} of {id}");
    }
}

/// Writes `len` pseudo-random bytes (xorshift from `seed`) to `path`; its bytes.
fn write_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// Asserts that the file at `path` holds exactly `expected`.
fn assert_file_is(path: &Path, expected: &[u8]) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        got == expected,
        "{} differs from the original ({} bytes, expected {})",
        path.display(),
        got.len(),
        expected.len()
    );
}

/// `data put FILE ARGS...`: the new id (the first line of the output) and
/// the output's other lines.
fn put(ns: &str, file: &Path, args: &[&str]) -> (String, Vec<String>) {
    let mut all = vec!["data", "put", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = ok(ns, &all);
    let mut lines = out.lines().map(str::to_owned);
    let id = lines.next().unwrap_or_default();
    assert!(
        id.parse::<DataId>().is_ok(),
        "data put {args:?}: the first line {id:?} is not a data id: {out:?}"
    );
    (id, lines.collect())
}

/// `data get ID PATH ARGS...` that must succeed, the file then holding `expected`.
fn get(ns: &str, id: &str, path: &Path, args: &[&str], expected: &[u8]) {
    let _ = std::fs::remove_file(path);
    let mut all = vec!["data", "get", id, path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = ok(ns, &all);
    assert!(
        out.starts_with(&format!(
            "wrote {} bytes of data {id} from ",
            expected.len()
        )),
        "{out}"
    );
    assert_file_is(path, expected);
}

/// One line of `data ls`.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    id: String,
    mode: String,
    size: u64,
    node: String,
}

/// `data ls [NODE]`, parsed.
fn data_ls(ns: &str, node: Option<&str>) -> Vec<Listed> {
    let mut args = vec!["data", "ls"];
    args.extend(node);
    ok(ns, &args)
        .lines()
        // An empty list is printed as one empty line.
        .filter(|line| !line.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 4, "data ls {node:?}: bad line {line:?}");
            Listed {
                id: f[0].to_owned(),
                mode: f[1].to_owned(),
                size: f[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad size in {line:?}")),
                node: f[3].to_owned(),
            }
        })
        .collect()
}

/// The line of `data ls [NODE]` for `id`, if any (and only one).
fn listed(ns: &str, node: Option<&str>, id: &str) -> Option<Listed> {
    let rows: Vec<Listed> = data_ls(ns, node)
        .into_iter()
        .filter(|r| r.id == id)
        .collect();
    assert!(rows.len() <= 1, "{id} listed more than once: {rows:?}");
    rows.into_iter().next()
}

fn entry(id: &str, mode: &str, size: usize, node: &str) -> Listed {
    Listed {
        id: id.to_owned(),
        mode: mode.to_owned(),
        size: size as u64,
        node: node.to_owned(),
    }
}

/// Waits (bounded) until `data ls` lists every one of `expected`.
fn wait_listed(ns: &str, expected: &[Listed]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = data_ls(ns, None);
        if expected.iter().all(|e| rows.contains(e)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "data ls still lacks some of {expected:?}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True for the message of data that no server has, whether it was asked
/// of a data manager or looked up through the location service.
fn is_no_such_data(line: &str, id: &str) -> bool {
    line.contains(&format!("no such data {id}"))
}

/// `args` run against `db1`'s database.
fn on_db1<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--db", "db1/db"];
    all.extend_from_slice(args);
    all
}

const MIB: usize = 1 << 20;

#[test]
fn moving_persistent_data_between_two_database_servers() {
    let c = Cluster::start();
    let ns = c.ns.as_str();
    let len = 3 * MIB + 12_345;
    let file = c.file("big.bin");
    let original = write_file(&file, len, 1);

    let (id, rest) = put(ns, &file, &["--on", "db1"]);
    assert!(
        rest.is_empty(),
        "persistent put prints the id alone: {rest:?}"
    );
    assert_eq!(
        listed(ns, None, &id),
        Some(entry(&id, "persistent", len, "db1"))
    );
    let j: serde_json::Value = serde_json::from_str(&ok(ns, &["--json", "data", "ls"])).unwrap();
    let rows = j.as_array().expect("--json data ls is an array");
    let row = rows
        .iter()
        .find(|r| r["data"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in {j}"));
    assert_eq!(row["node"], "db1", "{row}");
    assert_eq!(row["data"]["mode"], "persistent", "{row}");
    assert_eq!(row["data"]["size"], len as u64, "{row}");
    assert!(listed(ns, Some("db1"), &id).is_some());
    assert_eq!(listed(ns, Some("db2"), &id), None);
    c.assert_stored_on("db1", &id, len as u64);

    assert_eq!(
        ok(ns, &["data", "mv", &id, "db2"]),
        format!("moved data {id} ({len} bytes) from db1 to db2\n")
    );
    assert_eq!(
        listed(ns, None, &id),
        Some(entry(&id, "persistent", len, "db2"))
    );
    assert_eq!(listed(ns, Some("db1"), &id), None);
    assert_eq!(
        listed(ns, Some("db2"), &id),
        Some(entry(&id, "persistent", len, "db2"))
    );
    get(ns, &id, &c.file("out.bin"), &[], &original);
    c.assert_not_stored_on("db1", &id);
    c.assert_stored_on("db2", &id, len as u64);
}

#[test]
fn sticky_data_does_not_move() {
    let c = Cluster::start();
    let ns = c.ns.as_str();
    let len = MIB + 7;
    let file = c.file("sticky.bin");
    let original = write_file(&file, len, 2);

    let (id, _) = put(ns, &file, &["--on", "db1", "--mode", "sticky"]);
    assert_eq!(
        listed(ns, None, &id),
        Some(entry(&id, "sticky", len, "db1"))
    );

    let line = fails(ns, 1, &["data", "mv", &id, "db2"]);
    assert!(
        line.contains(&id) && line.contains("cannot be moved"),
        "{line}"
    );
    assert_eq!(
        listed(ns, None, &id),
        Some(entry(&id, "sticky", len, "db1"))
    );
    assert_eq!(listed(ns, Some("db2"), &id), None);
    get(ns, &id, &c.file("out.bin"), &[], &original);
    c.assert_stored_on("db1", &id, len as u64);
    c.assert_not_stored_on("db2", &id);
}

#[test]
fn every_mode_lifetime_through_the_cli() {
    let c = Cluster::start();
    let ns = c.ns.as_str();
    // Above the 64 KiB threshold: every transfer goes in chunks.
    let len = 600 * 1024 + 3;
    let file = c.file("value.bin");
    let original = write_file(&file, len, 3);
    let out = c.file("out.bin");
    let out_path = out.to_str().unwrap();

    // Volatile: kept by db1 only, not registered, gone after one use.
    let (id, rest) = put(ns, &file, &["--on", "db1", "--mode", "volatile"]);
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        listed(ns, None, &id),
        None,
        "volatile data is not registered"
    );
    assert_eq!(
        listed(ns, Some("db1"), &id),
        Some(entry(&id, "volatile", len, "db1"))
    );
    let line = fails(ns, 1, &["data", "get", &id, out_path]);
    assert!(is_no_such_data(&line, &id), "{line}");
    get(ns, &id, &out, &["--on", "db1"], &original);
    let line = fails(ns, 1, &["data", "get", &id, out_path, "--on", "db1"]);
    assert!(
        line.contains("no such data") && line.contains(&id),
        "{line}"
    );
    assert_eq!(listed(ns, Some("db1"), &id), None);

    // Stored modes: kept after any number of uses, until removed.
    let check_kept_then_remove = |id: &str, mode: &str| {
        for round in 0..3 {
            let on: &[&str] = if round % 2 == 0 {
                &[]
            } else {
                &["--on", "db1"]
            };
            get(ns, id, &out, on, &original);
        }
        assert_eq!(listed(ns, None, id), Some(entry(id, mode, len, "db1")));
        assert_eq!(
            listed(ns, Some("db1"), id),
            Some(entry(id, mode, len, "db1"))
        );
        c.assert_stored_on("db1", id, len as u64);
        assert_eq!(
            ok(ns, &["data", "rm", id]),
            format!("removed data {id} from db1\n")
        );
        let line = fails(ns, 1, &["data", "get", id, out_path]);
        assert!(is_no_such_data(&line, id), "{mode}: {line}");
        let line = fails(ns, 1, &["data", "get", id, out_path, "--on", "db1"]);
        assert!(
            line.contains("no such data") && line.contains(id),
            "{mode}: {line}"
        );
        assert_eq!(listed(ns, None, id), None);
        assert_eq!(listed(ns, Some("db1"), id), None);
        c.assert_not_stored_on("db1", id);
    };
    for mode in ["persistent", "sticky"] {
        let (id, rest) = put(ns, &file, &["--on", "db1", "--mode", mode]);
        assert!(rest.is_empty(), "{mode}: {rest:?}");
        check_kept_then_remove(&id, mode);
    }

    // The *_return modes also copy the stored bytes back.
    for mode in ["persistent_return", "sticky_return"] {
        let back = c.file(&format!("{mode}.copy"));
        let back_path = back.to_str().unwrap();
        let (id, rest) = put(
            ns,
            &file,
            &["--on", "db1", "--mode", mode, "--return-to", back_path],
        );
        assert_eq!(rest, [format!("copied back {len} bytes to {back_path}")]);
        assert_file_is(&back, &original);
        check_kept_then_remove(&id, mode);

        let (id, rest) = put(ns, &file, &["--on", "db1", "--mode", mode]);
        assert_eq!(
            rest,
            [format!(
                "copied back {len} bytes, identical to the file sent"
            )]
        );
        check_kept_then_remove(&id, mode);
    }
    let j: serde_json::Value = serde_json::from_str(&ok(
        ns,
        &[
            "--json",
            "data",
            "put",
            file.to_str().unwrap(),
            "--on",
            "db1",
            "--mode",
            "sticky_return",
        ],
    ))
    .unwrap();
    assert_eq!(j["data"]["mode"], "sticky_return", "{j}");
    assert_eq!(j["node"], "db1", "{j}");
    assert_eq!(j["returned"]["bytes"], len as u64, "{j}");
    assert_eq!(j["returned"]["identical"], true, "{j}");
}

#[test]
fn persistent_data_survives_a_restart() {
    let mut c = Cluster::start();
    let ns = c.ns.clone();
    let ns = ns.as_str();
    let (plen, slen, vlen) = (2 * MIB + 1, MIB + 2, 200 * 1024);
    let (pfile, sfile, vfile) = (c.file("p.bin"), c.file("s.bin"), c.file("v.bin"));
    let persistent = write_file(&pfile, plen, 4);
    let sticky = write_file(&sfile, slen, 5);
    write_file(&vfile, vlen, 6);
    let (pid, _) = put(ns, &pfile, &["--on", "db1"]);
    let (sid, _) = put(ns, &sfile, &["--on", "db1", "--mode", "sticky"]);
    let (vid, _) = put(ns, &vfile, &["--on", "db1", "--mode", "volatile"]);
    let expected = [
        entry(&pid, "persistent", plen, "db1"),
        entry(&sid, "sticky", slen, "db1"),
    ];
    wait_listed(ns, &expected);

    let data = c.data_dir("db1");
    let out = c.file("out.bin");
    for how in ["SIGKILL", "SIGTERM"] {
        if how == "SIGKILL" {
            c.db1.kill9();
        } else {
            let status = c.db1.terminate();
            assert!(status.success(), "dbserver stopped by SIGTERM: {status}");
        }
        let (db1, addr) = restart_dbserver(ns, "db1", &data, &c.db1_addr);
        c.db1 = db1;
        c.db1_addr = addr;

        // The restarted server registers its stored data again.
        wait_listed(ns, &expected);
        get(ns, &pid, &out, &[], &persistent);
        get(ns, &sid, &out, &[], &sticky);
        get(ns, &sid, &out, &["--on", "db1"], &sticky);
        // A volatile value does not outlive its server.
        assert_eq!(listed(ns, Some("db1"), &vid), None, "after {how}");
        let rows = data_ls(ns, Some("db1"));
        assert_eq!(rows.len(), 2, "after {how}: {rows:?}");
    }
}

#[test]
fn a_large_value_stored_once_is_referenced_by_many_rows() {
    let c = Cluster::start();
    let ns = c.ns.as_str();
    let len = 2 * MIB + 99;
    let file = c.file("photo.bin");
    let original = write_file(&file, len, 7);
    let (id, _) = put(ns, &file, &["--on", "db1"]);
    let cell = format!("data:{id}");

    let run_ok = |args: &[&str]| ok(ns, &on_db1(args));
    run_ok(&[
        "create-table",
        "photos",
        "--columns",
        "name:text,image:data",
    ]);
    for i in 1..=20 {
        let name = format!("photo{i}");
        assert_eq!(
            run_ok(&["insert", "photos", &name, &cell]),
            format!("{i}\n")
        );
    }
    assert_eq!(
        run_ok(&["get", "photos", "7", "image"]),
        format!("{cell}\n")
    );
    // Stored once: one item on db1, one line in the location service.
    c.assert_stored_on("db1", &id, len as u64);
    assert_eq!(data_ls(ns, None).len(), 1);

    let out = c.file("out.bin");
    let out_path = out.to_str().unwrap();
    assert_eq!(
        run_ok(&["get-file", "photos", "7", "image", out_path]),
        format!("wrote {len} bytes of photos[7].image to {out_path}\n")
    );
    assert_file_is(&out, &original);

    // Moved away, the value is still read through db1's cells: db1 fetches a
    // one-use copy from db2, found through the location service.
    ok(ns, &["data", "mv", &id, "db2"]);
    for row in ["7", "13"] {
        std::fs::remove_file(&out).unwrap();
        run_ok(&["get-file", "photos", row, "image", out_path]);
        assert_file_is(&out, &original);
    }
    c.assert_not_stored_on("db1", &id);
    c.assert_stored_on("db2", &id, len as u64);

    // A cell cannot reference data that does not exist.
    let missing = DataId::random().to_string();
    let bad = format!("data:{missing}");
    let line = fails(ns, 1, &on_db1(&["insert", "photos", "x", &bad]));
    assert!(
        line.contains("no such data") && line.contains(&missing),
        "{line}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&run_ok(&["--json", "scan", "photos"])).unwrap();
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20, "{j}");
    assert!(
        rows.iter()
            .all(|r| r["values"][1] == serde_json::json!({ "data": id })),
        "{j}"
    );
}

#[test]
fn bad_input_is_refused() {
    let c = Cluster::start();
    let ns = c.ns.as_str();
    let file = c.file("small.bin");
    let original = write_file(&file, 100 * 1024, 8);
    let file_path = file.to_str().unwrap();

    // Usage errors (exit status 2).
    let line = fails(ns, 2, &["data", "get", "not-a-uuid", "x"]);
    assert!(line.contains("not-a-uuid"), "{line}");
    let line = fails(ns, 2, &["data", "put", file_path, "--mode", "forever"]);
    assert!(line.contains("forever"), "{line}");
    assert!(data_ls(ns, None).is_empty());

    // Failed commands (exit status 1).
    let missing = DataId::random().to_string();
    let line = fails(ns, 1, &["data", "mv", &missing, "db2"]);
    assert!(is_no_such_data(&line, &missing), "{line}");
    let line = fails(ns, 1, &["data", "put", "/nonexistent/file", "--on", "db1"]);
    assert!(line.contains("/nonexistent/file"), "{line}");
    // No `dbserver` context here: the default server of `data put` is missing.
    fails(ns, 1, &["data", "put", file_path]);
    fails(ns, 1, &["data", "ls", "nosuchnode"]);
    assert!(data_ls(ns, None).is_empty());

    let (id, _) = put(ns, &file, &["--on", "db1"]);
    let line = fails(ns, 1, &["data", "mv", &id, "nosuchnode"]);
    assert!(line.contains("nosuchnode"), "{line}");
    let out = c.file("out.bin");
    let line = fails(
        ns,
        1,
        &["data", "get", &id, out.to_str().unwrap(), "--on", "db2"],
    );
    assert!(
        line.contains("no such data") && line.contains(&id),
        "{line}"
    );
    // Nothing moved.
    assert_eq!(
        listed(ns, None, &id),
        Some(entry(&id, "persistent", original.len(), "db1"))
    );
    get(ns, &id, &out, &[], &original);
}
