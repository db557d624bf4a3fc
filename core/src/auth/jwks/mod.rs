//! Remote key sets: [`set`] parses a fetched JWKS into verification keys,
//! [`store`] keeps each source's set and decides when to fetch.

pub mod set;
pub mod store;
