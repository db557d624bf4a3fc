//! A real browser through the gateway (`docs/contract.md#cors`): headless Chromium
//! (Debian's, driven by playwright-core: `testkit/node/browser.js`) loads a
//! page from the app's origin that calls a proxy endpoint through Envoy and
//! the filter with `fetch` and a Bearer token, as Backstage's frontend does,
//! on another origin than the gateway's. The test asserts what the page saw.

use backstage_proxy_testkit as support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

use serde_json::Value;
use support::*;

const TOKEN: &str = "static-token-0123456789";

/// Serves `page` for every request on a loopback port: the app's origin.
fn serve_page(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let page = page.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
            });
        }
    });
    port
}

/// The page: GET and a JSON POST with the token, and a GET without one.
/// The gateway's port comes in the page's query (`?gw=`).
fn page(mark: &str) -> String {
    format!(
        r#"<!doctype html><html><body><script>
const port = new URLSearchParams(location.search).get("gw");
const gw = "http://127.0.0.1:" + port + "/api/proxy/svc";
async function call(path, init) {{
  try {{
    const r = await fetch(gw + path, init);
    return {{ status: r.status, body: await r.text(), type: r.headers.get("content-type") }};
  }} catch (e) {{
    return {{ error: e.name + ": " + e.message }};
  }}
}}
(async () => {{
  const auth = {{ Authorization: "Bearer {TOKEN}" }};
  window.__result = {{
    get: await call("/items?{mark}-get", {{ headers: auth }}),
    post: await call("/items?{mark}-post", {{
      method: "POST",
      headers: {{ ...auth, "Content-Type": "application/json" }},
      body: JSON.stringify({{ hello: "{mark}" }}),
    }}),
    anonymous: await call("/items?{mark}-anon", {{}}),
  }};
}})();
</script></body></html>"#
    )
}

fn browse(url: &str) -> Value {
    let script = repo_root().join("testkit/node/browser.js");
    assert!(
        repo_root()
            .join("testkit/node/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is missing: run `make node-tools`"
    );
    let out = Command::new("node")
        .arg(&script)
        .arg(url)
        .output()
        .expect("node (Node.js) runs the browser driver");
    assert!(
        out.status.success(),
        "the browser did not finish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["result"].clone()
}

#[test]
fn a_browser_on_the_apps_origin_calls_the_proxy_and_one_elsewhere_is_blocked() {
    let up = Upstream::start(&[]);
    let p = up.port;
    // The app's page and a page on an origin backend.cors does not allow,
    // both on loopback: two origins (ports differ).
    let m_app = format!("app{}", unique());
    let m_other = format!("other{}", unique());
    let app = serve_page(page(&m_app));
    let other = serve_page(page(&m_other));
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{p}"}}}},
            "backend":{{"cors":{{"origin":"http://127.0.0.1:{app}","methods":["GET","HEAD","POST"],"credentials":true}},
            "auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    );
    let envoy = Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(p), p));
    let gw = envoy.port;

    let seen = browse(&format!("http://127.0.0.1:{app}/?gw={gw}"));
    assert_eq!(seen["get"]["status"], 200, "{seen}");
    assert!(
        seen["get"]["body"]
            .as_str()
            .unwrap()
            .contains(&format!("{m_app}-get")),
        "{seen}"
    );
    assert_eq!(seen["post"]["status"], 200, "{seen}");
    let posted = up
        .find(&format!("{m_app}-post"))
        .expect("the POST reached the upstream");
    assert_eq!(posted.method, "POST");
    assert_eq!(
        String::from_utf8_lossy(&posted.body),
        format!(r#"{{"hello":"{m_app}"}}"#)
    );
    assert_eq!(posted.header("content-type"), Some("application/json"));
    assert_eq!(
        posted.header("authorization"),
        None,
        "the token stops at the gateway"
    );
    // Without a token the page reads the 401 (CORS headers on it).
    assert_eq!(seen["anonymous"]["status"], 401, "{seen}");
    let body: Value = serde_json::from_str(seen["anonymous"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["name"], "AuthenticationError");
    up.assert_never(&format!("{m_app}-anon"));

    // Another origin: the browser blocks every call, and nothing reaches
    // the upstream (the preflight meets the credentials check).
    let seen = browse(&format!("http://127.0.0.1:{other}/?gw={gw}"));
    for call in ["get", "post", "anonymous"] {
        assert_eq!(
            seen[call]["error"], "TypeError: Failed to fetch",
            "{call}: {seen}"
        );
    }
    up.assert_never(&m_other);
}
