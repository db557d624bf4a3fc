// What the module reads from gateway.access, and every class of mistake
// it refuses (docs/access.md#permissions-in-backstages-rbac): a permission
// is a name (a non-empty string without whitespace) or { name, action }
// with action one of create, read, update, delete; it stands on an
// endpoint and on a rule; unknown keys are errors; one name has one
// action. Every mistake is reported with its config path, and nothing is
// returned while any remains.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  readGatewayPermissions,
  GatewayPermissionsConfigError,
  PERMISSION_ACTIONS,
} = require('../dist');

/** The errors `access` is refused with (fails if it is accepted). */
function errorsOf(access) {
  try {
    const got = readGatewayPermissions(access);
    assert.fail(`accepted: ${JSON.stringify(got)}`);
  } catch (e) {
    if (!(e instanceof GatewayPermissionsConfigError)) throw e;
    assert.match(e.message, /nothing was registered/);
    for (const line of e.errors) assert.ok(e.message.includes(line), line);
    return e.errors;
  }
}

/** (name, action) pairs, in order. */
function pairs(access) {
  return readGatewayPermissions(access).map(p => [p.name, p.action]);
}

test('the documented example: an endpoint permission and a rule permission with its action', () => {
  const access = {
    '/pagerduty': {
      permission: 'proxy.endpoint.pagerduty',
      rules: [
        {
          methods: ['POST', 'PUT', 'DELETE'],
          path: '/incidents',
          permission: { name: 'proxy.endpoint.pagerduty.write', action: 'update' },
        },
      ],
    },
  };
  assert.deepEqual(readGatewayPermissions(access), [
    { name: 'proxy.endpoint.pagerduty', action: undefined, path: 'gateway.access./pagerduty.permission' },
    {
      name: 'proxy.endpoint.pagerduty.write',
      action: 'update',
      path: 'gateway.access./pagerduty.rules[0].permission',
    },
  ]);
});

test('no gateway.access, or entries without permissions, register nothing', () => {
  assert.deepEqual(readGatewayPermissions(undefined), []);
  assert.deepEqual(readGatewayPermissions({}), []);
  assert.deepEqual(
    pairs({ '/a': {}, '/b': { allow: ['user'], rules: [{ path: '/x', allow: ['user'] }] } }),
    [],
  );
});

test('every action is accepted, in the object form; { name } alone is the bare name', () => {
  for (const action of PERMISSION_ACTIONS) {
    assert.deepEqual(pairs({ '/a': { permission: { name: `p.${action}`, action } } }), [
      [`p.${action}`, action],
    ]);
  }
  assert.deepEqual(pairs({ '/a': { permission: { name: 'p' } } }), [['p', undefined]]);
  assert.deepEqual(PERMISSION_ACTIONS, ['create', 'read', 'update', 'delete']);
});

test('the keys the gateway reads besides permission are left to the gateway', () => {
  // allow, rules' methods/path/allow and keys the filter may add later are
  // the filter's to check (backstage-proxy-wasm check); only what this
  // module registers is read here.
  assert.deepEqual(
    pairs({ '/a': { allow: 'not-checked-here', later: 1, rules: [{ methods: 7, permission: 'p' }] } }),
    [['p', undefined]],
  );
});

test('a name that is empty, not a string or holds whitespace (as the filter reads whitespace) is refused', () => {
  const bad = ['', ' ', 'a b', ' a', 'a ', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0085b', 'a\u2028b', 'a\u3000b', 'a\u200ab'];
  for (const name of bad) {
    assert.deepEqual(errorsOf({ '/a': { permission: name } }), [
      'gateway.access./a.permission: must be a permission name: a non-empty string without whitespace',
    ], JSON.stringify(name));
    assert.deepEqual(errorsOf({ '/a': { rules: [{ permission: { name } }] } }), [
      'gateway.access./a.rules[0].permission.name: must be a permission name: a non-empty string without whitespace',
    ], JSON.stringify(name));
  }
  // Not whitespace to the filter (Rust's char::is_whitespace), though
  // JavaScript's \s says otherwise: accepted alike.
  assert.deepEqual(pairs({ '/a': { permission: 'a\ufeffb' } }), [['a\ufeffb', undefined]]);
  for (const name of [1, true, null, ['p'], { name: 'p' }]) {
    assert.match(
      errorsOf({ '/a': { permission: { name } } })[0],
      /^gateway\.access\.\/a\.permission\.name: must be a string, but is of type (number|boolean|null|array|object)$/,
    );
  }
});

test('a permission that is neither a name nor an object is refused with its type', () => {
  for (const [v, type] of [[1, 'number'], [false, 'boolean'], [null, 'null'], [['p'], 'array']]) {
    assert.deepEqual(errorsOf({ '/a': { rules: [{}, { permission: v }] } }), [
      `gateway.access./a.rules[1].permission: must be a permission name or { name, action }, but is of type ${type}`,
    ]);
  }
});

test('an action outside create, read, update, delete is refused, letter case included', () => {
  for (const action of ['Read', 'READ', 'use', 'write', '', ' read']) {
    assert.deepEqual(errorsOf({ '/a': { permission: { name: 'p', action } } }), [
      `gateway.access./a.permission.action: '${action}' is not an action; expected one of create, read, update, delete`,
    ]);
  }
  for (const [action, type] of [[1, 'number'], [null, 'null'], [['read'], 'array'], [{}, 'object']]) {
    assert.deepEqual(errorsOf({ '/a': { permission: { name: 'p', action } } }), [
      `gateway.access./a.permission.action: of type ${type} is not an action; expected one of create, read, update, delete`,
    ]);
  }
});

test('unknown keys in a permission object and a missing name are errors naming their path', () => {
  for (const key of ['actions', 'Name', 'attributes', 'resourceType', 'type']) {
    assert.deepEqual(errorsOf({ '/a': { rules: [{ permission: { name: 'p', action: 'read', [key]: 'x' } }] } }), [
      `gateway.access./a.rules[0].permission.${key}: unknown key '${key}'; expected one of name, action`,
    ]);
  }
  assert.deepEqual(errorsOf({ '/a': { permission: { action: 'read' } } }), [
    'gateway.access./a.permission.name: is required',
  ]);
});

test('gateway.access, its entries, rules and each rule must have their shape', () => {
  for (const [v, type] of [[[], 'array'], ['x', 'string'], [null, 'null'], [1, 'number']]) {
    assert.deepEqual(errorsOf(v), [`gateway.access: must be an object, but is of type ${type}`]);
    assert.deepEqual(errorsOf({ '/a': v }), [`gateway.access./a: must be an object, but is of type ${type}`]);
  }
  assert.deepEqual(errorsOf({ '/a': { rules: { permission: 'p' } } }), [
    'gateway.access./a.rules: must be an array, but is of type object',
  ]);
  assert.deepEqual(errorsOf({ '/a': { rules: ['p'] } }), [
    'gateway.access./a.rules[0]: must be an object, but is of type string',
  ]);
});

test('one name with one action, wherever it is named, is registered once', () => {
  assert.deepEqual(
    pairs({
      '/a': { permission: 'p', rules: [{ permission: { name: 'p' } }, { permission: { name: 'w', action: 'update' } }] },
      '/b': { permission: { name: 'w', action: 'update' }, rules: [{ permission: 'p' }] },
    }),
    [['p', undefined], ['w', 'update']],
  );
});

test('one name with two actions (or with and without one) is refused, naming both places', () => {
  assert.deepEqual(
    errorsOf({
      '/a': { permission: { name: 'p', action: 'read' } },
      '/b': { rules: [{ permission: { name: 'p', action: 'update' } }] },
    }),
    [
      "gateway.access./b.rules[0].permission: permission 'p' has action 'update' here but action 'read' at gateway.access./a.permission; Backstage registers a permission once by name, so one name must have one action (use two names)",
    ],
  );
  assert.deepEqual(
    errorsOf({ '/a': { permission: 'p', rules: [{ permission: { name: 'p', action: 'read' } }] } }),
    [
      "gateway.access./a.rules[0].permission: permission 'p' has action 'read' here but no action at gateway.access./a.permission; Backstage registers a permission once by name, so one name must have one action (use two names)",
    ],
  );
  // Names compare exactly, as the registry keys them: no conflict.
  assert.deepEqual(
    pairs({ '/a': { permission: 'p' }, '/b': { permission: { name: 'P', action: 'read' } } }),
    [['p', undefined], ['P', 'read']],
  );
});

test('every mistake is reported at once, and none of the valid permissions is returned', () => {
  const errors = errorsOf({
    '/ok': { permission: 'fine' },
    '/a': { permission: 'a b', rules: [{ permission: { name: 'x', action: 'Read', extra: 1 } }] },
    '/b': { rules: 5 },
  });
  assert.deepEqual(errors, [
    'gateway.access./a.permission: must be a permission name: a non-empty string without whitespace',
    "gateway.access./a.rules[0].permission.extra: unknown key 'extra'; expected one of name, action",
    "gateway.access./a.rules[0].permission.action: 'Read' is not an action; expected one of create, read, update, delete",
    'gateway.access./b.rules: must be an array, but is of type number',
  ]);
});

test('the module is a backend feature for the proxy plugin, and the default export', () => {
  const pkg = require('../dist');
  const feature = pkg.proxyModuleGatewayPermissions;
  assert.equal(feature.$$type, '@backstage/BackendFeature');
  assert.equal(pkg.default, feature);
  const manifest = require('../package.json');
  assert.equal(manifest.backstage.role, 'backend-plugin-module');
  assert.equal(manifest.backstage.pluginId, 'proxy');
});
