//! The gateway's side of the service's configuration sends every
//! descriptor the service is configured with.

use super::*;

#[test]
fn the_routes_descriptors_are_the_ones_the_service_is_configured_with() {
    let limits = route_rate_limits();
    let keys: Vec<Vec<&str>> = limits
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["request_headers"]["descriptor_key"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            vec![ENDPOINT_DESCRIPTOR],
            vec![ENDPOINT_DESCRIPTOR, PRINCIPAL_DESCRIPTOR]
        ]
    );
}
