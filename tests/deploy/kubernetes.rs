use super::*;

// ---------------------------------------------------------------------------------------
// Configuration files

fn configmap_data() -> BTreeMap<String, BTreeMap<String, String>> {
    yaml_docs(&deploy_dir().join("kubernetes/configmap.yaml"))
        .into_iter()
        .map(|d| {
            let name = str_at(&d, "/metadata/name").to_string();
            let data = d["data"]
                .as_object()
                .expect("ConfigMap data")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (name, data)
        })
        .collect()
}

#[test]
fn every_configuration_is_accepted_by_the_proxy() {
    let tmp = temp_dir("deploy-configs");
    let cm = configmap_data();
    let k8s_config = tmp.path().join("k8s-dicomtap.toml");
    std::fs::write(&k8s_config, &cm["dicomtap-config"]["dicomtap.toml"]).unwrap();
    for (name, file) in [
        ("image", deploy_dir().join("dicomtap.toml")),
        ("compose", deploy_dir().join("compose/dicomtap.toml")),
        ("systemd", deploy_dir().join("systemd/dicomtap.toml")),
        ("kubernetes", k8s_config),
    ] {
        let rec = tmp.path().join(format!("rec-{name}"));
        let mut args = vec![
            "--config".to_string(),
            file.display().to_string(),
            "--record".into(),
            rec.display().to_string(),
        ];
        args.extend(loopback_overrides());
        let proxy = Proxy::start(&format!("proxy-{name}"), &args, tmp.path());
        drop(proxy);
        assert!(rec.is_dir(), "{name}: no recording directory");
    }
    // The device statements of the ConfigMap are valid.
    let dir = tmp.path().join("statements");
    std::fs::create_dir(&dir).unwrap();
    let statements = &cm["dicomtap-statements"];
    assert!(!statements.is_empty());
    for (key, text) in statements {
        assert!(
            key.ends_with(".toml"),
            "statement keys are file names: {key}"
        );
        std::fs::write(dir.join(key), text).unwrap();
    }
    let mut check = Command::new(DICOMTAP);
    check.args(["statement", "check", dir.to_str().unwrap()]);
    let (ok, out) = run("statement-check", check, tmp.path());
    assert!(ok, "the ConfigMap's statements are invalid:\n{out}");
}

// ---------------------------------------------------------------------------------------
// Kubernetes

fn matches_labels(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .expect("matchLabels")
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn parse_quantity(q: &str) -> u64 {
    let (num, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = num.parse().expect("a storage quantity");
    n * match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "" => 1,
        other => panic!("unexpected storage unit {other}"),
    }
}

#[test]
fn kubernetes_manifests_parse_and_fit_together() {
    let dir = deploy_dir().join("kubernetes");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let mut listed: Vec<String> = arr(&kustomization, "/resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");

    let mut objects: BTreeMap<(String, String), Value> = BTreeMap::new();
    for file in &present {
        for doc in yaml_docs(&dir.join(file)) {
            let kind = str_at(&doc, "/kind").to_string();
            let name = str_at(&doc, "/metadata/name").to_string();
            assert!(
                doc["apiVersion"].is_string(),
                "{file}: {kind} without apiVersion"
            );
            if kind != "Namespace" {
                assert_eq!(
                    doc.pointer("/metadata/namespace").and_then(Value::as_str),
                    Some("dicomtap"),
                    "{file}: {kind}/{name} in namespace dicomtap"
                );
            }
            assert!(
                objects.insert((kind.clone(), name.clone()), doc).is_none(),
                "{kind}/{name} twice"
            );
        }
    }
    let kinds: BTreeSet<&str> = objects.keys().map(|(k, _)| k.as_str()).collect();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "ServiceMonitor",
        "NetworkPolicy",
        "PrometheusRule",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }
    let get = |kind: &str, name: &str| -> &Value {
        objects
            .get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
    };
    let ns = get("Namespace", "dicomtap");
    assert_eq!(
        ns.pointer("/metadata/labels/pod-security.kubernetes.io~1enforce"),
        Some(&json!("restricted"))
    );

    // The Deployment.
    let deployment = get("Deployment", "dicomtap");
    assert_eq!(str_at(deployment, "/apiVersion"), "apps/v1");
    let pod = &deployment["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    assert!(matches_labels(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    let pod_sc = &pod["spec"]["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], json!(true));
    assert_ne!(pod_sc["runAsUser"], json!(0));
    assert_eq!(pod_sc["seccompProfile"]["type"], json!("RuntimeDefault"));
    let containers = arr(pod, "/spec/containers");
    let [c] = containers.as_slice() else {
        panic!("one container");
    };
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], json!(true));
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false));
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let args: Vec<&str> = arr(c, "/args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "proxy");
    let flag = |f: &str| {
        args.iter()
            .position(|a| *a == f)
            .and_then(|i| args.get(i + 1).copied())
    };
    assert_eq!(
        flag("--metrics"),
        Some("0.0.0.0:9464"),
        "the proxy binds metrics to 127.0.0.1 by default: probes and Prometheus need 0.0.0.0:9464"
    );
    let config_path = flag("--config").expect("--config");
    let ports: BTreeMap<&str, i64> = arr(c, "/ports")
        .iter()
        .map(|p| (str_at(p, "/name"), p["containerPort"].as_i64().unwrap()))
        .collect();
    assert_eq!(ports.get("metrics"), Some(&9464));
    for probe in ["livenessProbe", "readinessProbe"] {
        let http = &c[probe]["httpGet"];
        assert_eq!(http["path"], json!("/healthz"), "{probe}");
        let port = http["port"].as_str().unwrap_or("");
        assert_eq!(ports.get(port), Some(&9464), "{probe} on the metrics port");
    }
    // Mounts: configuration, statements, recordings.
    let volumes: BTreeMap<&str, &Value> = arr(pod, "/spec/volumes")
        .iter()
        .map(|v| (str_at(v, "/name"), v))
        .collect();
    let mounts: BTreeMap<&str, &str> = arr(c, "/volumeMounts")
        .iter()
        .map(|m| (str_at(m, "/mountPath"), str_at(m, "/name")))
        .collect();
    let cm = configmap_data();
    let config_volume = volumes[mounts[config_path]];
    let cm_name = str_at(config_volume, "/configMap/name");
    let config_key = config_path.rsplit('/').next().unwrap();
    let config = toml_value(
        cm.get(cm_name)
            .and_then(|d| d.get(config_key))
            .unwrap_or_else(|| panic!("ConfigMap {cm_name} has no {config_key}")),
        "the ConfigMap's dicomtap.toml",
    );
    let rec_dir = str_at(&config, "/recording/dir");
    let rec_volume = volumes[mounts
        .get(rec_dir)
        .expect("the recording directory is mounted")];
    let claim = str_at(rec_volume, "/persistentVolumeClaim/claimName");
    let pvc = get("PersistentVolumeClaim", claim);
    assert!(
        mounts
            .iter()
            .any(|(_, v)| volumes[v].pointer("/configMap/name")
                == Some(&json!("dicomtap-statements"))),
        "the statements ConfigMap is mounted"
    );
    for v in volumes.values() {
        if let Some(name) = v.pointer("/configMap/name").and_then(Value::as_str) {
            get("ConfigMap", name);
        }
    }
    // The claim holds what retention keeps, plus the pair being written.
    let kept = config["recording"]["rotate_bytes"].as_u64().unwrap()
        * (config["recording"]["keep_files"].as_u64().unwrap() + 1);
    let size = parse_quantity(str_at(pvc, "/spec/resources/requests/storage"));
    assert!(
        size >= kept,
        "PVC {claim} ({size} bytes) smaller than rotate_bytes x (keep_files + 1) = {kept}"
    );
    let listen = str_at(&config, "/listener/0/listen");
    let listen_port: i64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        ports.get("dicom"),
        Some(&listen_port),
        "container port = listener"
    );

    // Services select the pod, their target ports are the container's.
    let services: Vec<&Value> = objects
        .iter()
        .filter(|((k, _), _)| k == "Service")
        .map(|(_, v)| v)
        .collect();
    assert!(services.len() >= 2, "a DICOM and a metrics Service");
    for s in &services {
        assert!(matches_labels(&s["spec"]["selector"], pod_labels));
        for p in arr(s, "/spec/ports") {
            let target = p["targetPort"].as_str().expect("named target ports");
            assert!(ports.contains_key(target), "Service port {target}");
        }
    }
    assert!(
        services.iter().any(|s| arr(s, "/spec/ports")
            .iter()
            .any(|p| p["port"] == json!(104) && p["targetPort"] == json!("dicom"))),
        "a Service offers DICOM on port 104"
    );
    // The ServiceMonitor finds the metrics Service and its port.
    let sm = get("ServiceMonitor", "dicomtap");
    assert_eq!(str_at(sm, "/apiVersion"), "monitoring.coreos.com/v1");
    let selected: Vec<&&Value> = services
        .iter()
        .filter(|s| {
            matches_labels(
                &sm["spec"]["selector"]["matchLabels"],
                &s["metadata"]["labels"],
            )
        })
        .collect();
    assert_eq!(selected.len(), 1, "the ServiceMonitor selects one Service");
    let endpoint_port = str_at(sm, "/spec/endpoints/0/port");
    assert!(
        arr(selected[0], "/spec/ports")
            .iter()
            .any(|p| p["name"] == json!(endpoint_port) && p["targetPort"] == json!("metrics")),
        "ServiceMonitor port {endpoint_port} is the metrics port"
    );
    assert_eq!(str_at(sm, "/spec/endpoints/0/path"), "/metrics");
    let job_label = str_at(sm, "/spec/jobLabel");
    assert_eq!(
        selected[0]["metadata"]["labels"][job_label],
        json!("dicomtap"),
        "job=\"dicomtap\" as the alerts expect"
    );
    // The NetworkPolicy applies to the pod and admits its ports.
    let np = get("NetworkPolicy", "dicomtap");
    assert!(matches_labels(
        &np["spec"]["podSelector"]["matchLabels"],
        pod_labels
    ));
    let admitted: BTreeSet<&str> = arr(np, "/spec/ingress")
        .iter()
        .flat_map(|r| arr(r, "/ports").iter().map(|p| str_at(p, "/port")))
        .collect();
    assert!(admitted.contains("dicom") && admitted.contains("metrics"));
}
