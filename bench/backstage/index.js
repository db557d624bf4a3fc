// Backstage's own proxy, for `make bench` only: createBackend() with the
// proxy plugin, configured by the app-config file given with --config.
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(require('@backstage/plugin-proxy-backend'));
backend.start();
