use super::*;

// ---------------------------------------------------------------------------------------
// Dockerfile

#[test]
fn dockerfile_is_multi_stage_and_non_root() {
    let path = deploy_dir().join("Dockerfile");
    let text = read(&path);
    // Instructions, with continuation lines joined and comments dropped.
    let mut instructions: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        let (op, rest) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        instructions.push((op.to_uppercase(), rest.trim().to_string()));
        pending.clear();
    }
    let froms: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let first = &instructions[froms[0]].1;
    assert!(
        first.starts_with("rust:") || first.starts_with("docker.io/library/rust:"),
        "the build stage uses the official Rust image: {first}"
    );
    let last_from = *froms.last().unwrap();
    let runtime = &instructions[last_from].1;
    assert!(
        runtime.contains("distroless/cc") || runtime.contains("-slim"),
        "small runtime image: {runtime}"
    );
    let last_stage = &instructions[last_from + 1..];
    let user = last_stage
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, v)| v.as_str())
        .expect("a USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(
        !matches!(uid, "0" | "root"),
        "the runtime user is not root: {user}"
    );
    assert!(
        last_stage.iter().all(|(op, _)| op != "RUN"),
        "no RUN in the runtime stage: it needs no shell"
    );
    for op in ["ENTRYPOINT", "CMD"] {
        let (_, v) = last_stage
            .iter()
            .find(|(o, _)| o == op)
            .unwrap_or_else(|| panic!("{op} in the runtime stage"));
        let argv: Vec<String> =
            serde_json::from_str(v).unwrap_or_else(|_| panic!("{op} in exec (JSON) form: {v}"));
        assert!(!argv.is_empty());
    }
    let healthcheck = last_stage
        .iter()
        .find(|(o, _)| o == "HEALTHCHECK")
        .map(|(_, v)| v.as_str())
        .expect("a HEALTHCHECK instruction (NONE, documented, or exec form)");
    assert!(
        healthcheck == "NONE" || healthcheck.contains("CMD ["),
        "HEALTHCHECK without a shell: {healthcheck}"
    );
    let exposed: BTreeSet<&str> = last_stage
        .iter()
        .filter(|(o, _)| o == "EXPOSE")
        .flat_map(|(_, v)| v.split_whitespace())
        .map(|p| p.trim_end_matches("/tcp"))
        .collect();
    assert!(exposed.contains("9464"), "EXPOSE 9464: {exposed:?}");
    assert!(
        exposed.contains("104") || exposed.contains("11112"),
        "EXPOSE the DICOM port: {exposed:?}"
    );
    // Files copied from the context exist; the configuration lands where CMD reads it.
    let mut config_dest = None;
    for (_, v) in last_stage.iter().filter(|(o, _)| o == "COPY") {
        if v.contains("--from=") {
            continue;
        }
        let parts: Vec<&str> = v
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        let (dest, sources) = parts.split_last().unwrap();
        for s in sources {
            assert!(
                workspace_dir().join(s).exists(),
                "COPY source {s} is missing"
            );
        }
        if dest.ends_with("dicomtap.toml") {
            config_dest = Some(*dest);
        }
    }
    assert_eq!(config_dest, Some("/etc/dicomtap/dicomtap.toml"));
    assert!(
        text.contains("/var/lib/dicomtap"),
        "recordings at /var/lib/dicomtap"
    );
    let cmd = &last_stage.iter().find(|(o, _)| o == "CMD").unwrap().1;
    assert!(cmd.contains("/etc/dicomtap/dicomtap.toml"));
    let ignore = read(&deploy_dir().join("Dockerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}
