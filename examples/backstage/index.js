// A real Backstage backend for `make demo` and cli/tests/demo.rs
// (docs/demo.md): it signs users in and serves the user key set the
// gateway verifies their tokens with. Start it from the repository root:
//   node examples/backstage/index.js \
//     --config examples/app-config/demo/app-config.yaml \
//     --config examples/backstage/app-config.yaml
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
// Sign-in and the user key set (/api/auth/.well-known/jwks.json).
backend.add(require('@backstage/plugin-auth-backend'));
// GET /api/auth/guest/refresh: a token for auth.providers.guest.userEntityRef.
backend.add(require('@backstage/plugin-auth-backend-module-guest-provider'));
// GET /api/auth/oauth2Proxy/refresh with X-Forwarded-User: <name>: a token
// for that catalog user (oauth2-proxy sets the header in production; here
// the caller plays oauth2-proxy, so Backstage listens on loopback only).
backend.add(require('@backstage/plugin-auth-backend-module-oauth2-proxy-provider'));
// The users and groups of catalog.yaml: a user's token lists its groups
// in the `ent` claim.
backend.add(require('@backstage/plugin-catalog-backend'));
// Backstage's own proxy (the endpoints of the same app-config), to put
// beside the gateway: tests compare what each sends upstream.
backend.add(require('@backstage/plugin-proxy-backend'));
// The permission framework, allowing everything for now.
backend.add(require('@backstage/plugin-permission-backend'));
backend.add(require('@backstage/plugin-permission-backend-module-allow-all-policy'));
backend.start();
