//! The proxy-wasm filter: the only code that calls the host. It loads the
//! configuration into the core's immutable plan, feeds each request to the
//! core's decision and applies what comes back, and carries out the key-set
//! fetches the core's coordinator asks for. It holds no policy of its own.

mod filter;
