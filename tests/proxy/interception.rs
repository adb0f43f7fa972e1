//! Interception mode in network namespaces this test creates: a client namespace, a
//! server namespace whose firewall REDIRECTs port 104 to the proxy, the proxy finding the
//! original destination with SO_ORIGINAL_DST. Skips with a message where namespaces or
//! iptables are unavailable (needs root, iproute2, iptables, DCMTK).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

type R = Result<(), Box<dyn std::error::Error>>;

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Deletes the namespaces (and with them the veth pair) on drop.
struct Netns(Vec<String>);
impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn transparent_listener_forwards_to_the_original_destination() -> R {
    for tool in ["ip", "iptables", "storescp", "echoscu"] {
        if !have(tool) {
            eprintln!(
                "SKIPPED: {tool} not installed (interception test needs ip, iptables, DCMTK)"
            );
            return Ok(());
        }
    }
    let id = std::process::id() % 100_000;
    let (c, s) = (format!("dtc{id}"), format!("dts{id}"));
    let (v0, v1) = (format!("dtv{id}a"), format!("dtv{id}b"));
    if let Err(e) = run(&["ip", "netns", "add", &c]) {
        eprintln!("SKIPPED: cannot create network namespaces here ({e})");
        return Ok(());
    }
    let _ns = Netns(vec![c.clone(), s.clone()]);
    run(&["ip", "netns", "add", &s])?;
    run(&[
        "ip", "link", "add", &v0, "type", "veth", "peer", "name", &v1,
    ])?;
    run(&["ip", "link", "set", &v0, "netns", &c])?;
    run(&["ip", "link", "set", &v1, "netns", &s])?;
    run(&["ip", "-n", &c, "addr", "add", "10.77.0.1/24", "dev", &v0])?;
    run(&["ip", "-n", &s, "addr", "add", "10.77.0.2/24", "dev", &v1])?;
    for (ns, dev) in [(&c, &v0), (&s, &v1)] {
        run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    }
    if let Err(e) = run(&[
        "ip",
        "netns",
        "exec",
        &s,
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        "104",
        "-j",
        "REDIRECT",
        "--to-ports",
        "15000",
    ]) {
        eprintln!("SKIPPED: iptables NAT unavailable ({e})");
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let (inbox, rec) = (tmp.path().join("in"), tmp.path().join("rec"));
    std::fs::create_dir_all(&inbox)?;
    let _scp = Guard(
        Command::new("ip")
            .args(["netns", "exec", &s, "storescp", "-od"])
            .arg(&inbox)
            .arg("104")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let mut proxy = Guard(
        Command::new("ip")
            .args(["netns", "exec", &s, env!("CARGO_BIN_EXE_dicomtap"), "proxy"])
            .args([
                "--listen",
                "0.0.0.0:15000",
                "--transparent",
                "--metrics",
                "off",
            ])
            .arg("--record")
            .arg(&rec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    // Bounded wait for both listeners (echoscu retries).
    let mut ok = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &c,
                "echoscu",
                "-to",
                "2",
                "10.77.0.2",
                "104",
            ])
            .output()?;
        if out.status.success() {
            ok = true;
            break;
        }
    }
    assert!(ok, "echoscu through the interception never succeeded");
    run(&["kill", "-TERM", &proxy.0.id().to_string()])?;
    for _ in 0..100 {
        if proxy.0.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = read_logs(&rec)?;
    assert!(log.contains("\"upstream\":\"10.77.0.2:104\""), "{log}");
    assert!(log.contains("\"event\":\"associate_ac\""), "{log}");
    assert!(log.contains("\"client\":\"10.77.0.1:"), "{log}");
    Ok(())
}

fn read_logs(dir: &Path) -> std::io::Result<String> {
    let mut all = String::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            all.push_str(&std::fs::read_to_string(p)?);
        }
    }
    Ok(all)
}
