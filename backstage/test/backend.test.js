// The module in a real Backstage backend (docs/access.md#permissions-in-backstages-rbac):
// examples/backstage's packages (make demo-tools), which link this module
// by a `file:` dependency, with the proxy plugin, the permission backend
// and a policy written against the registered names (test/backend.js).
//
// - The proxy plugin's permission metadata lists exactly the configured
//   permissions with their actions, for a signed-in user and for a
//   service caller (as RBAC fetches it), and refuses a caller without a
//   token.
// - The permission backend decides those permissions, asked as the
//   metadata lists them, for real signed-in users as the policy says:
//   ada (group sre) and grace (not in sre).
// - A mistaken gateway.access fails the backend's startup, names every
//   path, and registers nothing, not even its valid permissions.
//
// Node, the demo's packages and this module's build are required: the
// test fails naming what is missing, never skips.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const APP = path.join(ROOT, 'examples', 'backstage');
const MODULE = '@backstage-proxy-wasm/plugin-proxy-backend-module-gateway-permissions';

function requirePrerequisites() {
  const need = [
    [path.join(APP, 'node_modules/@backstage/backend-defaults'), 'examples/backstage/node_modules: run `make demo-tools` (npm ci)'],
    [path.join(APP, 'node_modules/@backstage/plugin-proxy-backend'), 'the proxy plugin in examples/backstage: run `make demo-tools` (npm ci)'],
    [path.join(APP, 'node_modules', MODULE, 'dist/index.js'), `${MODULE} linked into examples/backstage and built: run \`make demo-tools\` and \`npm run build\` in backstage/`],
  ];
  for (const [p, what] of need) assert.ok(fs.existsSync(p), `missing ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = ms => new Promise(r => setTimeout(r, ms));
const stripAnsi = s => s.replace(/\u001b\[[0-9;]*m/g, '');

/**
 * The test app on a port of its own with `config` (JSON is YAML) after
 * the demo's app-config.yaml. The static token lets the test call as a
 * service, as RBAC does; it is never printed.
 */
async function startBackend(t, config) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serviceToken = crypto.randomBytes(24).toString('base64url');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'permmod-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'app-config.test.yaml');
  const full = {
    ...config,
    backend: {
      baseUrl: base,
      listen: { host: '127.0.0.1', port },
      auth: { externalAccess: [{ type: 'static', options: { token: serviceToken, subject: 'rbac-like' } }] },
    },
    permission: { enabled: true },
  };
  fs.writeFileSync(file, JSON.stringify(full, null, 2));
  const child = spawn(
    process.execPath,
    ['--preserve-symlinks', path.join(__dirname, 'backend.js'), '--config', 'app-config.yaml', '--config', file],
    { cwd: APP, env: { ...process.env, NODE_ENV: 'production', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', d => (log += d));
  child.stderr.on('data', d => (log += d));
  const exited = new Promise(r => child.on('exit', code => r(code)));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  return { base, serviceToken, log: () => stripAnsi(log), exited, child };
}

/** Waits for `pred()` (async, truthy) until `ms`, failing with `what` and the log's end. */
async function waitFor(backend, what, pred, ms = 120_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (backend.child.exitCode !== null) {
      assert.fail(`${what}: the backend exited (${backend.child.exitCode})\n${backend.log().slice(-4000)}`);
    }
    try {
      const v = await pred();
      if (v) return v;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) assert.fail(`${what}: not within ${ms / 1000} s\n${backend.log().slice(-4000)}`);
    await sleep(250);
  }
}

/**
 * A user token as docs/demo.md signs in (ada: the guest provider; grace:
 * the oauth2Proxy provider), once the catalog lists the user's groups.
 */
async function signIn(backend, who, group) {
  const [url, headers] =
    who === 'ada'
      ? [`${backend.base}/api/auth/guest/refresh`, {}]
      : [`${backend.base}/api/auth/oauth2Proxy/refresh`, { 'X-Forwarded-User': who }];
  return waitFor(backend, `${who} signed in with ${group}`, async () => {
    const res = await fetch(url, { headers: { ...headers, 'X-Requested-With': 'XMLHttpRequest' } });
    if (res.status !== 200) return undefined;
    const id = (await res.json()).backstageIdentity;
    return id.identity.ownershipEntityRefs.includes(group) ? id.token : undefined;
  });
}

async function metadata(backend, token) {
  const res = await fetch(`${backend.base}/api/proxy/.well-known/backstage/permissions/metadata`, {
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: await res.json() };
}

/** The permission backend's answers, one per permission, for `token`. */
async function authorize(backend, token, permissions) {
  const items = permissions.map(permission => ({ id: crypto.randomUUID(), permission }));
  const res = await fetch(`${backend.base}/api/permission/authorize`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ items }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.deepEqual(body.items.map(i => i.id), items.map(i => i.id));
  return body.items.map(i => i.result);
}

const byName = list => [...list].sort((a, b) => a.name.localeCompare(b.name));

const PROXY = {
  endpoints: {
    '/pagerduty': { target: 'http://127.0.0.1:9/pagerduty' },
    '/github': { target: 'http://127.0.0.1:9/github' },
    '/sre': { target: 'http://127.0.0.1:9/sre' },
  },
};

test('the configured permissions are listed with their actions, and a policy over them decides for real users', async t => {
  requirePrerequisites();
  const backend = await startBackend(t, {
    proxy: PROXY,
    gateway: {
      access: {
        '/pagerduty': {
          permission: 'proxy.endpoint.pagerduty',
          rules: [
            {
              methods: ['POST', 'PUT', 'DELETE'],
              path: '/incidents',
              permission: { name: 'proxy.endpoint.pagerduty.write', action: 'update' },
            },
            // The same permission again, in the object form: one registration.
            { methods: ['GET'], path: '/services', permission: { name: 'proxy.endpoint.pagerduty' } },
          ],
        },
        '/github': { allow: ['user'], permission: { name: 'proxy.endpoint.github', action: 'read' } },
        // A policy without a permission registers nothing.
        '/sre': { allow: ['group:default/sre'] },
      },
    },
    test: {
      policy: {
        allow: [
          { principal: 'group:default/sre', permission: 'proxy.endpoint.pagerduty' },
          { principal: 'user:default/ada', permission: 'proxy.endpoint.pagerduty.write', action: 'update' },
          { principal: 'group:default/developers', permission: 'proxy.endpoint.github', action: 'read' },
        ],
      },
    },
  });
  const ada = await signIn(backend, 'ada', 'group:default/sre');
  const grace = await signIn(backend, 'grace', 'group:default/developers');

  // (a) The metadata RBAC UIs read: exactly the configured permissions.
  const expected = [
    { type: 'basic', name: 'proxy.endpoint.github', attributes: { action: 'read' } },
    { type: 'basic', name: 'proxy.endpoint.pagerduty', attributes: {} },
    { type: 'basic', name: 'proxy.endpoint.pagerduty.write', attributes: { action: 'update' } },
  ];
  const asUser = await metadata(backend, ada);
  assert.equal(asUser.status, 200, JSON.stringify(asUser.body));
  assert.deepEqual(byName(asUser.body.permissions), expected);
  assert.deepEqual(asUser.body.rules, []);
  const asService = await metadata(backend, backend.serviceToken);
  assert.equal(asService.status, 200);
  assert.deepEqual(byName(asService.body.permissions), expected);
  const anonymous = await metadata(backend, undefined);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.error.name, 'AuthenticationError');
  assert.match(backend.log(), /Registered 3 permission\(s\) from gateway\.access/);

  // (b) The permission backend decides them, asked exactly as registered.
  const registered = byName(asUser.body.permissions);
  assert.deepEqual(await authorize(backend, ada, registered), ['ALLOW', 'ALLOW', 'ALLOW']);
  assert.deepEqual(await authorize(backend, grace, registered), ['ALLOW', 'DENY', 'DENY']);
  // The action is part of what is decided: the write permission asked
  // with another action than the registered one is denied to ada too.
  const [, , write] = registered;
  assert.deepEqual(
    await authorize(backend, ada, [{ ...write, attributes: { action: 'read' } }, { ...write, attributes: {} }]),
    ['DENY', 'DENY'],
  );

  // The proxy plugin still serves beside the module, and Backstage is ready.
  const ready = await fetch(`${backend.base}/.backstage/health/v1/readiness`);
  assert.equal(ready.status, 200);
  assert.ok(!backend.log().includes(ada) && !backend.log().includes(backend.serviceToken), 'a token reached the log');
});

test('a mistaken gateway.access fails startup naming every path, and registers nothing', async t => {
  requirePrerequisites();
  const backend = await startBackend(t, {
    proxy: PROXY,
    gateway: {
      access: {
        // Valid, and still not registered while anything else is wrong.
        '/pagerduty': {
          permission: 'proxy.endpoint.pagerduty',
          rules: [
            {
              methods: ['POST'],
              path: '/incidents',
              permission: { name: 'proxy.endpoint.pagerduty.write', action: 'Update', actions: ['update'] },
            },
          ],
        },
        '/github': { permission: 'proxy endpoint github' },
        '/sre': { permission: { name: 'proxy.endpoint.pagerduty', action: 'read' } },
      },
    },
  });
  const failed = await waitFor(backend, 'the startup failure', async () =>
    /Backend startup failed/.test(backend.log()) ? backend.log() : undefined,
  );
  for (const expected of [
    "gateway.access./pagerduty.rules[0].permission.actions: unknown key 'actions'; expected one of name, action",
    "gateway.access./pagerduty.rules[0].permission.action: 'Update' is not an action; expected one of create, read, update, delete",
    'gateway.access./github.permission: must be a permission name: a non-empty string without whitespace',
    "gateway.access./sre.permission: permission 'proxy.endpoint.pagerduty' has action 'read' here but no action at gateway.access./pagerduty.permission",
  ]) {
    assert.ok(failed.includes(expected), `the log does not say: ${expected}\n${failed.slice(-4000)}`);
  }
  assert.match(failed, /Module 'gateway-permissions' for plugin 'proxy' startup failed/);
  // Backstage keeps the process (its own choice), but it never reports
  // ready, and the proxy plugin lists no permission at all.
  const ready = await fetch(`${backend.base}/.backstage/health/v1/readiness`);
  assert.equal(ready.status, 503);
  const meta = await metadata(backend, backend.serviceToken);
  assert.equal(meta.status, 200, JSON.stringify(meta.body));
  assert.deepEqual(meta.body.permissions, []);
});
