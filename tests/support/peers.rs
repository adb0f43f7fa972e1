//! Third-party peers started the same way by every end-to-end test: DCMTK's storescp and
//! dcmqrscp, and Orthanc. Each starter picks a free loopback port, waits (bounded) until
//! the peer listens and returns a [`Proc`] that ends it by PID on drop.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Proc, RunOutput, command, free_port, is_root, run, set_mode, user_ids, wait_for_port};

/// How long a peer may take to start listening.
pub const PEER_START: Duration = Duration::from_secs(30);

/// `storescp +xa EXTRA -od OUT PORT` (accepts every transfer syntax it knows); returns it
/// and its port once it listens.
pub fn storescp(name: &str, out: &Path, log_dir: &Path, extra: &[&str]) -> (Proc, u16) {
    let args: Vec<&str> = std::iter::once("+xa")
        .chain(extra.iter().copied())
        .collect();
    storescp_with(name, out, log_dir, &args)
}

/// `storescp ARGS -od OUT PORT` with only the options given (storescp's own default
/// transfer syntaxes unless they say otherwise); returns it and its port once it listens.
pub fn storescp_with(name: &str, out: &Path, log_dir: &Path, args: &[&str]) -> (Proc, u16) {
    std::fs::create_dir_all(out).expect("creating storescp's output directory");
    let port = free_port();
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["-od".into(), out.display().to_string(), port.to_string()]);
    let mut p = Proc::spawn(name, command("storescp", &args), log_dir);
    assert!(
        wait_for_port(port, PEER_START, Some(&mut p)),
        "storescp did not listen on {port}\n{}",
        p.output()
    );
    (p, port)
}

/// A dcmqrscp set-up: one AE `QRSCP` (read-write, any peer) over a database in `dir`,
/// with the given move destinations `(AE title, port)` on 127.0.0.1.
pub struct Dcmqrscp {
    /// The configuration file written for it.
    pub config: PathBuf,
    /// Its storage area.
    pub db: PathBuf,
    /// Its DICOM port.
    pub port: u16,
}

impl Dcmqrscp {
    /// Writes the configuration (MaxPDUSize 16384, at most 16 associations).
    pub fn configure(dir: &Path, dests: &[(&str, u16)]) -> Dcmqrscp {
        let dests: Vec<(&str, &str, u16)> = dests
            .iter()
            .map(|&(ae, port)| (ae, "127.0.0.1", port))
            .collect();
        Dcmqrscp::configure_at(dir, free_port(), &dests)
    }

    /// Like [`Dcmqrscp::configure`], listening on `port`, with move destinations
    /// `(AE title, host, port)` on any host (e.g. the other side of a network namespace).
    pub fn configure_at(dir: &Path, port: u16, dests: &[(&str, &str, u16)]) -> Dcmqrscp {
        let db = dir.join("dcmqrscp-db");
        std::fs::create_dir_all(&db).expect("creating dcmqrscp's storage area");
        let hosts: String = dests
            .iter()
            .map(|(ae, host, p)| format!("{} = ({ae}, {host}, {p})\n", ae.to_lowercase()))
            .collect();
        let text = format!(
            "NetworkTCPPort  = {port}\nMaxPDUSize      = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\n{hosts}HostTable END\n\
             VendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nQRSCP {} RW (200, 1024mb) ANY\nAETable END\n",
            db.display()
        );
        let config = dir.join("dcmqrscp.cfg");
        std::fs::write(&config, text).expect("writing dcmqrscp's configuration");
        Dcmqrscp { config, db, port }
    }

    /// Starts `dcmqrscp -c CONFIG EXTRA` and waits until it listens.
    pub fn start(&self, name: &str, log_dir: &Path, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = vec!["-c".into(), self.config.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut p = Proc::spawn(name, command("dcmqrscp", &args), log_dir);
        assert!(
            wait_for_port(self.port, PEER_START, Some(&mut p)),
            "dcmqrscp did not listen on {}\n{}",
            self.port,
            p.output()
        );
        p
    }
}

/// Starts Orthanc (AE `ORTHANC`, HTTP off unless `extra` turns it on, no plugins) with
/// `extra` merged over the basics, as the `orthanc` user when the tests run as root;
/// returns it once its DICOM port listens. Register move destinations and Storage
/// Commitment peers with `"DicomModalities": {"name": ["AE", "127.0.0.1", port]}`.
pub fn orthanc(dir: &Path, name: &str, port: u16, extra: serde_json::Value) -> Proc {
    let storage = dir.join(format!("{name}-storage"));
    std::fs::create_dir_all(&storage).expect("creating Orthanc's storage area");
    let user = if is_root() { user_ids("orthanc") } else { None };
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&storage, Some(uid), Some(gid))
            .expect("giving Orthanc its storage area");
        // Orthanc must reach its configuration; the directory stays ours.
        set_mode(dir, 0o755);
    }
    let mut config = serde_json::json!({
        "Name": format!("dicomtap-{name}"),
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "HttpServerEnabled": false,
        "HttpPort": free_port(),
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "DicomServerEnabled": true,
        "Plugins": [],
        "DicomCheckCalledAet": false,
        "DicomAlwaysAllowEcho": true,
        "DicomAlwaysAllowStore": true,
    });
    if let (Some(base), Some(more)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    let cfg = dir.join(format!("{name}.json"));
    std::fs::write(
        &cfg,
        serde_json::to_vec_pretty(&config).expect("Orthanc's configuration is JSON"),
    )
    .expect("writing Orthanc's configuration");
    set_mode(&cfg, 0o644);
    let mut cmd = command("Orthanc", &[cfg.as_os_str()]);
    if let Some((uid, gid)) = user {
        // Like `runuser -u orthanc`, but this PID is Orthanc itself (ended on drop).
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid).current_dir(dir);
    }
    let mut p = Proc::spawn(name, cmd, dir);
    assert!(
        wait_for_port(port, PEER_START, Some(&mut p)),
        "Orthanc did not listen on {port}\n{}",
        p.output()
    );
    p
}

/// `PYTHON SCRIPT PORT ARGS`: a pynetdicom SCP that listens on the port given as its first
/// argument; returns it and its port once it listens.
pub fn python_scp<S: AsRef<OsStr>>(
    name: &str,
    python: &Path,
    script: &Path,
    args: &[S],
    log_dir: &Path,
) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(port.to_string()).args(args);
    let mut p = Proc::spawn(name, cmd, log_dir);
    assert!(
        wait_for_port(port, PEER_START, Some(&mut p)),
        "the pynetdicom SCP {} did not listen on {port}\n{}",
        script.display(),
        p.output()
    );
    (p, port)
}

/// `echoscu -aet CALLING -aec CALLED 127.0.0.1 PORT`, bounded by a minute; the caller
/// asserts on the outcome (accepted, rejected, refused).
pub fn echoscu(dir: &Path, port: u16, calling: &str, called: &str) -> RunOutput {
    let args = [
        "-aet",
        calling,
        "-aec",
        called,
        "127.0.0.1",
        &port.to_string(),
    ];
    run(
        "echoscu",
        command("echoscu", &args),
        dir,
        Duration::from_secs(60),
    )
}

/// `storescu OPTIONS 127.0.0.1 PORT FILES`: the command line every storescu in the tests
/// shares; the caller runs it with its own bound and says whether it must succeed.
pub fn storescu_command<S: AsRef<str>>(options: &[S], port: u16, files: &[PathBuf]) -> Command {
    let mut args: Vec<String> = options.iter().map(|o| o.as_ref().to_string()).collect();
    args.extend(["127.0.0.1".to_string(), port.to_string()]);
    args.extend(files.iter().map(|f| f.display().to_string()));
    command("storescu", &args)
}
