// The test app (test/backend.test.js): the real Backstage backend of
// examples/backstage (its node_modules, its catalog of ada and grace)
// with the proxy plugin, this module, and a permission policy that the
// test configures. Run with cwd examples/backstage and
// `node --preserve-symlinks`, so that this module, linked into
// examples/backstage/node_modules by its `file:` dependency, takes its
// peer dependencies from that tree, as it does once installed from npm.
//
//   test:
//     policy:
//       allow:
//         - { principal: group:default/sre, permission: proxy.endpoint.pagerduty }
//         - { principal: user:default/ada, permission: x, action: update }
//
// A rule allows a request when the signed-in user is the principal or a
// member of it (the token's ownership refs), the name matches, and the
// action matches (no `action`: the permission asked has none). Every
// other request is denied.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const app = process.cwd();
const appRequire = createRequire(path.join(app, 'index.js'));
const MODULE = '@backstage-proxy-wasm/plugin-proxy-backend-module-gateway-permissions';

const { createBackend } = appRequire('@backstage/backend-defaults');
const { createBackendModule, coreServices } = appRequire('@backstage/backend-plugin-api');
const { policyExtensionPoint } = appRequire('@backstage/plugin-permission-node/alpha');

const testPolicy = createBackendModule({
  pluginId: 'permission',
  moduleId: 'test-policy',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint, config: coreServices.rootConfig },
      async init({ policy, config }) {
        const allow = config.getOptional('test.policy.allow') ?? [];
        policy.setPolicy({
          async handle(request, user) {
            const refs = user?.info.ownershipEntityRefs ?? [];
            const asked = request.permission;
            const ok = allow.some(
              a =>
                refs.includes(a.principal) &&
                a.permission === asked.name &&
                a.action === asked.attributes.action,
            );
            return { result: ok ? 'ALLOW' : 'DENY' };
          },
        });
      },
    });
  },
});

async function main() {
  const backend = createBackend();
  backend.add(appRequire('@backstage/plugin-auth-backend'));
  backend.add(appRequire('@backstage/plugin-auth-backend-module-guest-provider'));
  backend.add(appRequire('@backstage/plugin-auth-backend-module-oauth2-proxy-provider'));
  backend.add(appRequire('@backstage/plugin-catalog-backend'));
  backend.add(appRequire('@backstage/plugin-permission-backend'));
  backend.add(testPolicy);
  backend.add(appRequire('@backstage/plugin-proxy-backend'));
  // As the README installs it: backend.add(import('<package>')).
  backend.add(import(appRequire.resolve(MODULE)));
  await backend.start();
  // The module must run on the app's own Backstage packages (its peers),
  // never on a second copy from the module's build dependencies.
  const foreign = Object.keys(require.cache).filter(
    f => f.includes(`${path.sep}node_modules${path.sep}`) && !f.startsWith(app + path.sep),
  );
  if (foreign.length > 0) {
    console.error(`test app: packages loaded from outside ${app}: ${foreign.slice(0, 5).join(', ')}`);
    process.exit(3);
  }
  if (!Object.keys(require.cache).some(f => f.startsWith(path.join(app, 'node_modules', MODULE)))) {
    console.error('test app: the module was not loaded from the app\'s node_modules');
    process.exit(3);
  }
  console.log('test app: started');
}

main();
