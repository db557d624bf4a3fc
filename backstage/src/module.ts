import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { createPermission } from '@backstage/plugin-permission-common';
import { readGatewayPermissions } from './config';

/**
 * The proxy plugin's module that registers every permission the
 * gateway's `gateway.access` section names (basic permissions, with their
 * action), so that `/api/proxy/.well-known/backstage/permissions/metadata`
 * lists them and RBAC UIs offer them to policy authors.
 *
 * A mistake in those permissions fails the backend's startup with the
 * config path of every mistake; nothing is registered then.
 *
 * @public
 */
export const proxyModuleGatewayPermissions = createBackendModule({
  pluginId: 'proxy',
  moduleId: 'gateway-permissions',
  register(reg) {
    reg.registerInit({
      deps: {
        config: coreServices.rootConfig,
        registry: coreServices.permissionsRegistry,
        logger: coreServices.logger,
      },
      async init({ config, registry, logger }) {
        const permissions = readGatewayPermissions(config.getOptional('gateway.access'));
        registry.addPermissions(
          permissions.map(p =>
            createPermission({
              name: p.name,
              attributes: p.action === undefined ? {} : { action: p.action },
            }),
          ),
        );
        logger.info(
          `Registered ${permissions.length} permission(s) from gateway.access: ${
            permissions.map(p => p.name).join(', ') || '(none)'
          }`,
        );
      },
    });
  },
});
