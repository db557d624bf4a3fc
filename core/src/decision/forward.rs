//! The request edits of a forwarded request: the header allow-list, the
//! injected headers, `x-forwarded-*`, the upstream path and authority, and
//! the destination cluster.

use std::borrow::Cow;

use super::{Forward, Request, ENVOY_OWNED};
use crate::config::{Endpoint, Plan};
use crate::headers;
use crate::identity::Principal;

pub(super) fn forward<'a>(
    plan: &'a Plan,
    endpoint: &'a Endpoint,
    idx: usize,
    req: &Request<'a>,
    path: String,
    principal: Option<Principal>,
) -> Forward<'a> {
    let names = req.headers.iter().map(|&(n, _)| n);
    let mut remove = headers::request_removals(endpoint, names);
    remove.retain(|n| !ENVOY_OWNED.contains(&n.as_ref()));
    let mut set: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(endpoint.headers.len() + 3);

    for (name, value) in &endpoint.headers {
        // an injected Host is `upstream_authority`'s to decide
        if name != "host" {
            set.push((Cow::Borrowed(name.as_str()), Cow::Borrowed(value.as_str())));
        }
    }
    let marker = plan.gateway.xfwd_marker.as_str();
    if endpoint.xfwd {
        for (name, value) in forwarded_headers(req) {
            set.push((Cow::Borrowed(name), Cow::Owned(value)));
        }
        set.push((Cow::Borrowed(marker), Cow::Borrowed("1")));
    } else if !remove.iter().any(|n| n == marker)
        && req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(marker))
    {
        remove.push(Cow::Borrowed(marker));
    }
    // `auth` (http-proxy's option): only where nothing else leaves an
    // Authorization on the outgoing request, as Node decides it.
    if let Some(basic) = &endpoint.basic_auth {
        let kept = req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            && !remove.iter().any(|n| n == "authorization");
        if !kept && !set.iter().any(|(n, _)| n == "authorization") {
            set.push((
                Cow::Borrowed("authorization"),
                Cow::Borrowed(basic.as_str()),
            ));
        }
    }
    set.push((Cow::Borrowed(":path"), Cow::Owned(path)));
    if let Some(a) = endpoint
        .upstream_authority
        .as_ref()
        .filter(|_| !plan.gateway.route_rewrites_authority)
    {
        set.push((Cow::Borrowed(":authority"), Cow::Borrowed(a.as_str())));
    }
    let cluster_header = plan.gateway.cluster_header.as_str();
    remove.retain(|n| n != cluster_header);
    set.push((
        Cow::Borrowed(cluster_header),
        Cow::Borrowed(endpoint.cluster.as_str()),
    ));
    // Anything set is first removed so a client value never survives next
    // to ours (set replaces, but be explicit about every value).
    remove.retain(|n| !set.iter().any(|(s, _)| s == n));
    Forward {
        endpoint: idx,
        remove,
        set,
        principal,
        landed: Vec::new(),
        permission: None,
    }
}

/// `x-forwarded-*` computed by the gateway, never taken from the client.
fn forwarded_headers(req: &Request<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(addr) = req.client_address {
        out.push(("x-forwarded-for", strip_port(addr).to_string()));
    }
    let proto = if req.downstream_tls { "https" } else { "http" };
    let port = authority_port(req.authority)
        .map(str::to_string)
        .unwrap_or_else(|| if proto == "https" { "443" } else { "80" }.to_string());
    out.push(("x-forwarded-host", req.authority.to_string()));
    out.push(("x-forwarded-proto", proto.to_string()));
    out.push(("x-forwarded-port", port));
    out
}

pub(super) fn strip_port(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => addr,
    }
}

pub(super) fn authority_port(authority: &str) -> Option<&str> {
    let after_host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(_, after)| after)?,
        None => authority,
    };
    let (_, port) = after_host.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}
