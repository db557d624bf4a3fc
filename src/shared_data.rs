//! Envoy's shared data (one store for every worker VM of the plugin), as
//! the core's [`SharedData`].

use backstage_proxy_core::shared_data::SharedData;
use proxy_wasm::hostcalls;

pub struct HostShared;

impl SharedData for HostShared {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}
