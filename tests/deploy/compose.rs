use super::*;

// ---------------------------------------------------------------------------------------
// Compose

#[test]
fn compose_file_parses_and_fits_together() {
    let dir = deploy_dir().join("compose");
    let compose = yaml(&dir.join("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    for s in ["dicomtap", "orthanc", "prometheus", "grafana"] {
        assert!(services.contains_key(s), "compose service {s}");
    }
    let orthanc_image = str_at(&compose, "/services/orthanc/image");
    assert!(
        orthanc_image.starts_with("orthancteam/orthanc:")
            || orthanc_image.starts_with("jodogne/orthanc"),
        "{orthanc_image}"
    );
    // Build from the repository root with deploy/Dockerfile.
    let d = &compose["services"]["dicomtap"];
    let context = dir.join(str_at(d, "/build/context"));
    assert!(
        context.join(str_at(d, "/build/dockerfile")).is_file(),
        "the build context and Dockerfile exist"
    );
    assert_eq!(d["read_only"], json!(true));
    assert_eq!(d["cap_drop"], json!(["ALL"]));
    assert!(!str_at(d, "/user").starts_with('0'));
    // Bind mounts point at files of the repository.
    for (name, s) in services {
        for v in s
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let spec = v.as_str().unwrap();
            let source = spec.split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    dir.join(source).exists(),
                    "{name}: mount source {source} does not exist"
                );
            } else {
                assert!(
                    compose["volumes"].get(source).is_some(),
                    "{name}: volume {source} is not declared"
                );
            }
        }
    }
    // The configuration the proxy gets: metrics on 0.0.0.0:9464, the listener on the
    // published container port, the upstream the orthanc service.
    let mounted = d["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .find(|v| v.contains(":/etc/dicomtap/dicomtap.toml"))
        .expect("a dicomtap.toml mounted at /etc/dicomtap/dicomtap.toml");
    let config = toml_value(
        &read(&dir.join(mounted.split(':').next().unwrap())),
        "compose/dicomtap.toml",
    );
    assert_eq!(str_at(&config, "/metrics_listen"), "0.0.0.0:9464");
    let listen = str_at(&config, "/listener/0/listen");
    let container_port = listen.rsplit(':').next().unwrap();
    let published: Vec<&str> = arr(d, "/ports")
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        published
            .iter()
            .any(|p| p.ends_with(&format!(":{container_port}"))),
        "{published:?} publishes {container_port}"
    );
    assert!(published.iter().any(|p| p.ends_with(":9464")));
    let upstream = str_at(&config, "/listener/0/upstream");
    assert!(services.contains_key(upstream.split(':').next().unwrap()));
    assert_eq!(str_at(&config, "/recording/dir"), "/var/lib/dicomtap");

    // Grafana provisioning files parse.
    let grafana = deploy_dir().join("grafana/provisioning");
    let ds = yaml(&grafana.join("datasources/dicomtap.yaml"));
    assert_eq!(str_at(&ds, "/datasources/0/type"), "prometheus");
    let dashboards = yaml(&grafana.join("dashboards/dicomtap.yaml"));
    let path = str_at(&dashboards, "/providers/0/options/path");
    assert!(
        compose["services"]["grafana"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().contains(&format!(":{path}"))),
        "the dashboards are mounted where the provider reads them ({path})"
    );
}
