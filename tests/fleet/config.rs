use super::*;

/// The shipped site configuration is a valid proxy configuration with a valid identity
/// and fleet table.
#[test]
fn shipped_site_configuration_loads() {
    let path = support::workspace_dir().join("deploy/fleet/dicomtap-site.toml");
    let config = dicomtap_proxy::config::ProxyConfig::from_toml_file(&path).unwrap();
    assert_eq!(config.identity.site.as_deref(), Some("north"));
    assert_eq!(
        config.identity.labels(),
        vec![
            ("site".to_string(), "north".to_string()),
            ("instance_name".to_string(), "pacs-gw-1".to_string())
        ]
    );
    let fleet =
        dicomtap_fleet::PublisherConfig::from_table(config.fleet.as_ref().unwrap()).unwrap();
    assert_eq!(fleet.spool_max_bytes, 268_435_456);
    assert!(dicomtap_fleet::Identity::new("north", "pacs-gw-1").is_ok());
    // A typo in [fleet] is refused with the key named.
    let mut bad = config.fleet.clone().unwrap();
    bad.insert("spool_max_byte".into(), toml::Value::Integer(5));
    let err = dicomtap_fleet::PublisherConfig::from_table(&bad).unwrap_err();
    assert!(err.contains("spool_max_byte"), "{err}");
}
