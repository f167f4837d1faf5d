//! The real binaries on several hosts: network namespaces with addresses of
//! their own (10.77.0.0/24), joined by a bridge in a namespace of its own,
//! all made (and removed) by the test. Servers listen on 0.0.0.0 and must
//! advertise an address the other hosts can dial. A client on a third host
//! does CRUD, is called back by a watch although it listens on no port,
//! hands its own objects to a server (import), and moves data host to
//! host. A silent partition (a host's port on the switch goes down, its own
//! link stays up) makes calls fail within their deadline, keepalive closes
//! the connection and the name server drops the cut-off node after its
//! lease; healing makes everything work again without restarting anything.
//!
//! Needs root and `ip` (iproute2). Elsewhere the tests say they were
//! skipped; with `DISTOBJ_REQUIRE_NETNS=1` (set by `.ci/run`) a skip fails.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Proc, bin};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lease of the name server: a cut-off node's entries go this soon.
const LEASE_MS: u64 = 1500;
/// Keepalive of every node: a silent link is declared dead this soon.
const KEEPALIVE: [&str; 4] = [
    "--keepalive-interval-ms",
    "300",
    "--keepalive-timeout-ms",
    "2000",
];

/// True when this machine can make namespaces; otherwise says why the test
/// is skipped (or fails, when `DISTOBJ_REQUIRE_NETNS` is set).
fn netns_available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ip = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if root && ip {
        return true;
    }
    let why = format!("needs root ({root}) and iproute2's `ip` ({ip})");
    assert!(
        std::env::var_os("DISTOBJ_REQUIRE_NETNS").is_none(),
        "multi-host test required but not possible: {why}"
    );
    eprintln!("SKIPPED: multi-host test {why}");
    false
}

/// Runs `ip` with `args`, failing the test if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Hosts `a`, `b`, `c`... on one switch; removed when dropped.
struct Net {
    /// Prefix of every namespace and link name: unique per test process.
    tag: String,
    hosts: Vec<char>,
}

impl Net {
    fn new(hosts: &[char]) -> Net {
        // Unique per test (they run in parallel) and per process (several
        // runs on one machine); interface names stay under 15 bytes.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("do{}x{n}", std::process::id() % 100_000);
        let net = Net {
            tag: tag.clone(),
            hosts: hosts.to_vec(),
        };
        let sw = net.switch();
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for (i, h) in hosts.iter().enumerate() {
            let ns = net.ns(*h);
            let (inner, port) = (format!("{tag}{h}0"), net.port(*h));
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &inner, "type", "veth", "peer", "name", &port]);
            ip(&["link", "set", &inner, "netns", &ns]);
            ip(&["link", "set", &port, "netns", &sw]);
            ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.77.0.{}/24", i + 1),
                "dev",
                "eth0",
            ]);
            // And an IPv6 address, usable at once (no duplicate detection).
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("fd77::{}/64", i + 1),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &port, "up"]);
        }
        net
    }

    fn switch(&self) -> String {
        format!("{}sw", self.tag)
    }

    fn ns(&self, h: char) -> String {
        format!("{}{h}", self.tag)
    }

    /// The host's port on the switch.
    fn port(&self, h: char) -> String {
        format!("{}{h}1", self.tag)
    }

    /// The address of host `h`.
    fn addr(&self, h: char) -> String {
        let i = self.hosts.iter().position(|x| *x == h).expect("a host") + 1;
        format!("10.77.0.{i}")
    }

    /// The IPv6 address of host `h`, bracketed for `HOST:PORT`.
    fn addr6(&self, h: char) -> String {
        let i = self.hosts.iter().position(|x| *x == h).expect("a host") + 1;
        format!("[fd77::{i}]")
    }

    /// A command running `program` on host `h`.
    fn on(&self, h: char, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(h)]).arg(program);
        c
    }

    /// Takes host `h`'s port on the switch down (or up): nothing reaches it
    /// or leaves it, and neither end is told.
    fn cut(&self, h: char, cut: bool) {
        let state = if cut { "down" } else { "up" };
        ip(&["-n", &self.switch(), "link", "set", &self.port(h), state]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(*h)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch()])
            .status();
    }
}

/// A server binary started on host `h`, listening on an unspecified
/// address (`0.0.0.0` or `[::]`).
fn server(net: &Net, h: char, program: &str, args: &[&str]) -> Proc {
    let mut p = Proc::spawn(
        net.on(h, &bin(program))
            .args(args)
            .args(KEEPALIVE)
            .args(["--insecure"])
            .env("RUST_LOG", "info"),
    );
    let addr = p
        .listening()
        .unwrap_or_else(|e| panic!("{program} on {h}: {e}"));
    let listening: std::net::SocketAddr = addr.parse().unwrap();
    assert!(
        listening.ip().is_unspecified(),
        "{program} listens on {addr}"
    );
    p
}

/// The name server on host `a`, on all its addresses: it, and the address
/// others reach it at.
fn nameserver_on_a(net: &Net) -> (Proc, String) {
    let p = server(
        net,
        'a',
        "nameserver",
        &[
            "--listen",
            "0.0.0.0:7000",
            "--lease-ms",
            &LEASE_MS.to_string(),
        ],
    );
    (p, format!("{}:7000", net.addr('a')))
}

/// A dbserver on host `h`, on all its addresses, registered as `name`,
/// keeping its data in `dir/name`.
fn dbserver_on(net: &Net, h: char, ns: &str, name: &str, dir: &Path) -> Proc {
    let data = dir.join(name);
    server(
        net,
        h,
        "dbserver",
        &[
            "--listen",
            "0.0.0.0:7001",
            "--nameserver",
            ns,
            "--name",
            name,
            "--data",
            data.to_str().unwrap(),
        ],
    )
}

/// What a client run on host `h` printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn client_on(net: &Net, h: char, ns: &str, args: &[&str]) -> Run {
    let out = net
        .on(h, &bin("client"))
        .env_remove("NAMESERVER")
        .env_remove("RUST_LOG")
        .args(["--nameserver", ns, "--timeout", "5"])
        .args(KEEPALIVE)
        .args(args)
        .output()
        .expect("run client");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_on(net: &Net, h: char, ns: &str, args: &[&str]) -> String {
    let r = client_on(net, h, ns, args);
    assert!(r.ok, "client {args:?} on {h}: {}", r.stderr);
    r.stdout
}

/// Retries `f` until it holds, for at most `limit`.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn servers_on_all_addresses_serve_a_client_on_a_third_host() {
    if !netns_available() {
        return;
    }
    let net = Net::new(&['a', 'b', 'c']);
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = nameserver_on_a(&net);
    let _db1 = dbserver_on(&net, 'b', &ns, "dbserver", dir.path());
    let _db2 = dbserver_on(&net, 'a', &ns, "archive", dir.path());

    // Every call below from c reaches b or a at the address their
    // capabilities carry: 0.0.0.0:7001 there would mean c itself.
    let c = 'c';
    // CRUD from the third host.
    ok_on(
        &net,
        c,
        &ns,
        &["create-table", "t", "--columns", "name:text,n:int"],
    );
    let row = ok_on(&net, c, &ns, &["insert", "t", "ada", "1"]);
    let row = row.trim();
    ok_on(&net, c, &ns, &["set", "t", row, "n", "2"]);
    assert_eq!(ok_on(&net, c, &ns, &["get", "t", row, "n"]).trim(), "2");

    // A watch: the server on b calls back a listener on c, which listens on
    // no port (over the connection c opened).
    let mut watch = Proc::spawn(
        net.on(c, &bin("client"))
            .args(["--nameserver", &ns, "--timeout", "10"])
            .args(["watch", "t", row, "n", "--count", "1"]),
    );
    std::thread::sleep(Duration::from_millis(1000));
    ok_on(&net, 'a', &ns, &["set", "t", row, "n", "3"]);
    let status = watch.wait_exit();
    assert!(status.success(), "watch failed");

    // Objects of c handed to b: an import pulls rows through c's callbacks.
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "name:text,n:int\nbob,5\ncyd,6\n").unwrap();
    ok_on(
        &net,
        c,
        &ns,
        &["import-csv", "people", csv.to_str().unwrap()],
    );
    let scan = ok_on(&net, 'b', &ns, &["scan", "people"]);
    assert!(scan.contains("bob") && scan.contains("cyd"), "{scan}");

    // Data from c to b, then b to a node to node, then back to c.
    let file = dir.path().join("blob.bin");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let id = ok_on(
        &net,
        c,
        &ns,
        &["data", "put", file.to_str().unwrap(), "--on", "dbserver"],
    );
    let id = id.lines().next().unwrap().trim().to_owned();
    ok_on(&net, c, &ns, &["data", "mv", &id, "archive"]);
    let back = dir.path().join("back.bin");
    ok_on(&net, c, &ns, &["data", "get", &id, back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), bytes);
    let located = ok_on(&net, c, &ns, &["data", "ls"]);
    assert!(
        located.contains(&id) && located.contains("archive"),
        "{located}"
    );
}

#[test]
fn a_silent_partition_fails_calls_in_time_and_healing_needs_no_restart() {
    if !netns_available() {
        return;
    }
    let net = Net::new(&['a', 'b', 'c']);
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = nameserver_on_a(&net);
    let _db = dbserver_on(&net, 'b', &ns, "dbserver", dir.path());
    // A server on the host that will be cut off.
    let _far = dbserver_on(&net, 'c', &ns, "far", dir.path());
    ok_on(&net, 'c', &ns, &["create-table", "t", "--columns", "n:int"]);
    let row = ok_on(&net, 'c', &ns, &["insert", "t", "1"])
        .trim()
        .to_owned();
    // A watch on c waits for a change, over a connection to b.
    let mut watch = Proc::spawn(
        net.on('c', &bin("client"))
            .args(["--nameserver", &ns, "--timeout", "5"])
            .args(KEEPALIVE)
            .args(["watch", "t", &row, "n"]),
    );
    std::thread::sleep(Duration::from_millis(1000));

    net.cut('c', true);
    // A call from the cut-off host fails within its deadline, as a
    // transport failure.
    let t0 = Instant::now();
    let r = client_on(&net, 'c', &ns, &["get", "t", &row, "n"]);
    assert!(!r.ok, "a call across the cut succeeded");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert!(
        r.stderr.contains("unreachable")
            || r.stderr.contains("deadline")
            || r.stderr.contains("no answer"),
        "{}",
        r.stderr
    );
    // Keepalive closes the watch's connection: it fails by itself.
    let status = watch.wait_exit();
    assert!(!status.success());
    // The name server drops the cut-off node once its lease runs out.
    eventually(
        Duration::from_secs(10),
        "far leaves the name server",
        || {
            let ls = ok_on(&net, 'b', &ns, &["ls"]);
            !ls.contains("far")
        },
    );

    net.cut('c', false);
    // Healed: the far server registers again by itself, and calls from c
    // work, the first one included.
    eventually(Duration::from_secs(15), "far comes back", || {
        ok_on(&net, 'b', &ns, &["ls"]).contains("far")
    });
    assert_eq!(ok_on(&net, 'c', &ns, &["get", "t", &row, "n"]).trim(), "1");
}

#[test]
fn an_unspecified_listener_advertises_an_address_of_its_host() {
    if !netns_available() {
        return;
    }
    // The hosts have no default route: the name server learns its address
    // from the first connection it takes, the dbserver from its connection
    // to the name server. A client on another host then reaches the
    // dbserver through its capability, and the name server's own contexts
    // (whose capabilities carry the name server's address) from a third
    // node's connection.
    let net = Net::new(&['a', 'b', 'c']);
    let dir = tempfile::tempdir().unwrap();
    let ns = format!("{}:7000", net.addr('a'));
    let mut ns_proc = server(&net, 'a', "nameserver", &["--listen", "0.0.0.0:7000"]);
    let _db = server(
        &net,
        'b',
        "dbserver",
        &[
            "--listen",
            "0.0.0.0:7001",
            "--nameserver",
            &ns,
            "--data",
            dir.path().join("db").to_str().unwrap(),
        ],
    );
    ok_on(&net, 'c', &ns, &["create-table", "t", "--columns", "n:int"]);
    assert_eq!(ok_on(&net, 'c', &ns, &["insert", "t", "7"]).trim(), "1");
    let ls = ok_on(&net, 'c', &ns, &["ls", "nameserver"]);
    assert!(!ls.contains("0.0.0.0"), "{ls}");
    // It logged the address it chose.
    let _ = ns_proc.terminate();
    let logs = ns_proc.stderr_lines();
    assert!(
        logs.iter()
            .any(|l| l.contains("advertis") && l.contains(&net.addr('a'))),
        "{logs:?}"
    );
}

#[test]
fn ipv6_listeners_on_all_addresses_serve_a_client_on_another_host() {
    if !netns_available() {
        return;
    }
    // The same as over IPv4: servers on `[::]`, which no capability may
    // carry, and a client on a third host reaching both.
    let net = Net::new(&['a', 'b', 'c']);
    let dir = tempfile::tempdir().unwrap();
    let ns = format!("{}:7000", net.addr6('a'));
    let _ns = server(&net, 'a', "nameserver", &["--listen", "[::]:7000"]);
    let db = server(
        &net,
        'b',
        "dbserver",
        &[
            "--listen",
            "[::]:7001",
            "--nameserver",
            &ns,
            "--data",
            dir.path().join("db").to_str().unwrap(),
        ],
    );
    ok_on(&net, 'c', &ns, &["create-table", "t", "--columns", "n:int"]);
    let row = ok_on(&net, 'c', &ns, &["insert", "t", "6"])
        .trim()
        .to_owned();
    assert_eq!(ok_on(&net, 'c', &ns, &["get", "t", &row, "n"]).trim(), "6");
    // It said which address it took: its own, from its connection.
    let mine = format!("{}:7001", net.addr6('b'));
    eventually(
        Duration::from_secs(5),
        "the dbserver logs its address",
        || {
            db.stderr_lines()
                .iter()
                .any(|l| l.contains("advertis") && l.contains(&mine))
        },
    );
}
