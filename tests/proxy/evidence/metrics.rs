use super::*;

// ---------------------------------------------------------------------------------------
// 7. Metrics

#[test]
fn metrics_pass_promtool_and_ae_titles_are_capped() {
    let Some((_, data)) =
        require_peers("metrics", &["storescp", "storescu", "echoscu", "promtool"])
    else {
        return;
    };
    let tmp = temp_dir("ev-metrics");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let toml = format!(
        "metrics_listen = \"127.0.0.1:0\"\n\
         [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{up}\"\n\
         [metrics]\nae_title_cap = 50\n"
    );
    let proxy = configured_proxy(&toml, dir, 1, true, 0);
    let port = proxy.port().to_string();
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    storescu("storescu", proxy.port(), &files, dir);
    // 60 distinct calling AE titles against a cap of 50.
    for i in 0..60 {
        let (aet, aec) = (format!("MODALITY{i:02}"), format!("PACS{i:02}"));
        run_ok(
            &format!("echo-{i}"),
            command(
                "echoscu",
                &[
                    "-aet",
                    aet.as_str(),
                    "-aec",
                    aec.as_str(),
                    "127.0.0.1",
                    &port,
                ],
            ),
            dir,
            PEER,
        );
    }
    let metrics = proxy.metrics.expect("a metrics address");
    let (status, body) = http_get_status_body(metrics.port(), "/metrics", None);
    assert!(status.contains("200"), "{status}");
    promtool_check(&body, dir);

    for label in ["calling_ae", "called_ae"] {
        let values = label_values(&body, label);
        assert!(
            values.len() <= 51,
            "{} {label} values: {values:?}",
            values.len()
        );
        assert!(
            values.contains_key("other"),
            "the overflow bucket: {values:?}"
        );
    }
    let calling = label_values(&body, "calling_ae");
    assert!(calling.contains_key("STORESCU"), "{calling:?}");
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("dicomtap_associations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 61.0, "every association counted once");
}
