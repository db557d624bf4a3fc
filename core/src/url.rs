//! The small part of URL parsing the gateway needs: absolute `http`/`https`
//! URLs of endpoint targets, key-set URLs and the Backstage backend.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`, lower case.
    pub scheme: String,
    /// Host name (lower case) or bracketed IPv6 literal.
    pub host: String,
    /// Explicit or default port.
    pub port: u16,
    /// Path, always starting with `/`.
    pub path: String,
    /// Query without the `?`, if the URL had one.
    pub query: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Url {
    pub fn parse(input: &str) -> Result<Url, UrlError> {
        if input.is_empty() {
            return Err(UrlError("empty URL"));
        }
        if input.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError("URL contains whitespace or control characters"));
        }
        let (scheme, rest) = input.split_once("://").ok_or(UrlError(
            "not an absolute URL (expected http:// or https://)",
        ))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(UrlError("scheme must be http or https")),
        };
        // Drop the fragment, then split authority / path / query.
        let rest = rest.split('#').next().unwrap_or_default();
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        if authority.contains('@') {
            return Err(UrlError(
                "credentials in the URL are not supported; inject them with `headers`",
            ));
        }
        let (host, port) = split_host_port(authority)?;
        let port = port.unwrap_or(default_port);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (tail, None),
        };
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        Ok(Url {
            scheme,
            host,
            port,
            path,
            query,
        })
    }

    pub fn default_port(&self) -> u16 {
        if self.scheme == "https" {
            443
        } else {
            80
        }
    }

    /// `host[:port]` with the port only when it is not the scheme's default.
    pub fn authority(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The Envoy cluster this URL maps to when the configuration does not
    /// name one: `<scheme>_<host>_<port>`, every character outside
    /// `[A-Za-z0-9.-]` replaced by `_` (IPv6 brackets and colons).
    pub fn cluster_name(&self) -> String {
        let host: String = self
            .host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}_{}_{}", self.scheme, host, self.port)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError("URL has no host"));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or(UrlError("unterminated IPv6 literal"))?;
        let (inside, after) = rest.split_at(close);
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UrlError("invalid IPv6 literal"));
        }
        let after = after.strip_prefix(']').unwrap_or(after);
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError("invalid port"))?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(UrlError("URL has no host"));
    }
    if !host.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(UrlError("invalid host name"));
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => {
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UrlError("invalid port"));
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError("invalid port")),
                Ok(n) => Some(n),
            }
        }
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests;
