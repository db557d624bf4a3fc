// The Backstage of tests/e2e_permissions.rs: the demo's backend
// (examples/backstage: auth with the guest and oauth2-proxy providers,
// the catalog of ada and grace, the proxy plugin) with the permission
// backend deciding by a real policy instead of allowing everything, this
// repository's gateway-permissions module (backstage/: it registers the
// permissions gateway.access names, so Backstage lists them), and a small
// plugin that gets a signed-in user a token for the proxy acting on their
// behalf, as any Backstage plugin calling the proxy for a user would hold
// one. Run with cwd examples/backstage and `node --preserve-symlinks`.
//
// The policy reads the file `test.policyFile` names on every decision:
//   { "allow": [ { "principal": "group:default/sre",
//                  "permission": "proxy.endpoint.pd", "action": "update" } ] }
// A rule allows when the user owns the principal (their ownership refs),
// the name matches, and the action matches (no `action`: the permission
// asked has none). Everything else is denied. Each decision is counted,
// and GET /api/probe/decisions answers how many there were.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

const appRequire = createRequire(path.join(process.cwd(), 'index.js'));
const { createBackend } = appRequire('@backstage/backend-defaults');
const {
  createBackendModule,
  createBackendPlugin,
  coreServices,
} = appRequire('@backstage/backend-plugin-api');
const { policyExtensionPoint } = appRequire('@backstage/plugin-permission-node/alpha');

let decisions = 0;

const filePolicy = createBackendModule({
  pluginId: 'permission',
  moduleId: 'file-policy',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint, config: coreServices.rootConfig },
      async init({ policy, config }) {
        const file = config.getString('test.policyFile');
        policy.setPolicy({
          async handle(request, user) {
            decisions += 1;
            const rules = JSON.parse(fs.readFileSync(file, 'utf8')).allow ?? [];
            const refs = user?.info.ownershipEntityRefs ?? [];
            const asked = request.permission;
            const ok = rules.some(
              r =>
                refs.includes(r.principal) &&
                r.permission === asked.name &&
                r.action === asked.attributes.action,
            );
            return { result: ok ? 'ALLOW' : 'DENY' };
          },
        });
      },
    });
  },
});

// GET /api/probe/obo: a plugin token for `proxy` acting for the caller;
// GET /api/probe/service-token: one for the plugin itself.
const probe = createBackendPlugin({
  pluginId: 'probe',
  register(reg) {
    reg.registerInit({
      deps: { router: coreServices.httpRouter, auth: coreServices.auth, httpAuth: coreServices.httpAuth },
      async init({ router, auth, httpAuth }) {
        const express = appRequire('express');
        const r = express.Router();
        r.get('/obo', async (req, res) => {
          const credentials = await httpAuth.credentials(req, { allow: ['user'] });
          const { token } = await auth.getPluginRequestToken({
            onBehalfOf: credentials,
            targetPluginId: 'proxy',
          });
          res.json({ token });
        });
        // A token for `proxy` from this plugin itself: a service principal
        // with no restrictions.
        r.get('/service-token', async (_req, res) => {
          const { token } = await auth.getPluginRequestToken({
            onBehalfOf: await auth.getOwnServiceCredentials(),
            targetPluginId: 'proxy',
          });
          res.json({ token });
        });
        r.get('/decisions', (_req, res) => res.json({ decisions }));
        router.use(r);
        router.addAuthPolicy({ path: '/decisions', allow: 'unauthenticated' });
        router.addAuthPolicy({ path: '/service-token', allow: 'unauthenticated' });
      },
    });
  },
});

const backend = createBackend();
backend.add(appRequire('@backstage/plugin-auth-backend'));
backend.add(appRequire('@backstage/plugin-auth-backend-module-guest-provider'));
backend.add(appRequire('@backstage/plugin-auth-backend-module-oauth2-proxy-provider'));
backend.add(appRequire('@backstage/plugin-catalog-backend'));
backend.add(appRequire('@backstage/plugin-proxy-backend'));
backend.add(appRequire('@backstage/plugin-permission-backend'));
backend.add(filePolicy);
backend.add(probe);
backend.add(
  import(
    appRequire.resolve('@backstage-proxy-wasm/plugin-proxy-backend-module-gateway-permissions'),
  ),
);
backend.start();
