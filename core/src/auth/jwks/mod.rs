//! Remote key sets: [`set`] parses a fetched JWKS into verification keys,
//! [`store`] keeps each source's set and decides when to fetch, [`fetch`]
//! coordinates the fetches across requests and worker VMs.

pub mod fetch;
pub mod set;
pub mod store;
