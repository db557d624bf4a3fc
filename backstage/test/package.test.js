// What `npm publish` would ship: the compiled module, its types and the
// README, nothing else; Backstage's packages as peers (the app's own
// copies), no dependency of its own; the metadata Backstage's tooling
// reads (backstage.role, backstage.pluginId).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const DIR = path.resolve(__dirname, '..');
const manifest = require('../package.json');

test('the package ships dist/ (CommonJS and types) and the README only', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: DIR,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [packed] = JSON.parse(out);
  assert.equal(packed.name, manifest.name);
  const files = packed.files.map(f => f.path).sort();
  assert.deepEqual(files, [
    'README.md',
    'dist/config.d.ts',
    'dist/config.js',
    'dist/index.d.ts',
    'dist/index.js',
    'dist/module.d.ts',
    'dist/module.js',
    'package.json',
  ]);
  assert.ok(files.includes(manifest.main) && files.includes(manifest.types));
  // CommonJS, loadable by require in a Backstage backend.
  const main = require(path.join(DIR, manifest.main));
  assert.equal(typeof main.readGatewayPermissions, 'function');
});

test('Backstage packages are peers, which the demo backend and the build both satisfy', () => {
  assert.equal(manifest.dependencies, undefined);
  const app = path.resolve(DIR, '..', 'examples', 'backstage');
  const { createRequire } = require('node:module');
  const appRequire = createRequire(path.join(app, 'index.js'));
  const semver = appRequire('semver');
  const peers = Object.entries(manifest.peerDependencies);
  assert.deepEqual(peers.map(([name]) => name).sort(), [
    '@backstage/backend-plugin-api',
    '@backstage/plugin-permission-common',
  ]);
  for (const [name, range] of peers) {
    const inApp = appRequire(`${name}/package.json`).version;
    assert.ok(semver.satisfies(inApp, range), `examples/backstage has ${name} ${inApp}, outside ${range}`);
    const built = manifest.devDependencies[name];
    assert.ok(semver.satisfies(built, range), `built against ${name} ${built}, outside ${range}`);
  }
  assert.deepEqual(manifest.backstage, {
    role: 'backend-plugin-module',
    pluginId: 'proxy',
    pluginPackage: '@backstage/plugin-proxy-backend',
  });
  assert.equal(manifest.publishConfig.access, 'public');
});
