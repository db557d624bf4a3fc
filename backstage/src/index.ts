/**
 * Backstage backend module for the proxy plugin that registers the
 * permissions named by the gateway's `gateway.access` configuration.
 *
 * Install: `backend.add(import('@backstage-proxy-wasm/plugin-proxy-backend-module-gateway-permissions'));`
 *
 * @packageDocumentation
 */

import { proxyModuleGatewayPermissions } from './module';

export { proxyModuleGatewayPermissions };
export {
  PERMISSION_ACTIONS,
  GatewayPermissionsConfigError,
  readGatewayPermissions,
} from './config';
export type { GatewayPermission, PermissionAction } from './config';
export default proxyModuleGatewayPermissions;
