/*
 * Reads the permissions that `gateway.access` names, held to the same
 * rules the gateway's filter applies when it loads the same file:
 *
 *   gateway:
 *     access:
 *       /pagerduty:
 *         permission: proxy.endpoint.pagerduty
 *         rules:
 *           - methods: [POST]
 *             path: /incidents
 *             permission: { name: proxy.endpoint.pagerduty.write, action: update }
 *
 * Every mistake is collected with its config path, and none of the
 * permissions is returned while any mistake remains: registering part of
 * a configuration would offer policy authors a list that is not the one
 * the gateway asks about.
 */

/** The actions Backstage's permission framework knows (its `attributes.action`). */
export const PERMISSION_ACTIONS = ['create', 'read', 'update', 'delete'] as const;

/** One of {@link PERMISSION_ACTIONS}. */
export type PermissionAction = (typeof PERMISSION_ACTIONS)[number];

/** A basic permission that `gateway.access` names. */
export interface GatewayPermission {
  /** The permission's name, e.g. `proxy.endpoint.pagerduty`. */
  name: string;
  /** The action, or undefined when the config gives only a name. */
  action: PermissionAction | undefined;
  /** Where it was first declared, e.g. `gateway.access./pagerduty.permission`. */
  path: string;
}

/** A JSON value as Backstage's config reader hands it over. */
type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

type JsonObject = { [key: string]: JsonValue | undefined };

/** `gateway.access` is invalid; `errors` lists every mistake, each with its path. */
export class GatewayPermissionsConfigError extends Error {
  readonly errors: readonly string[];

  constructor(errors: readonly string[]) {
    super(
      `Invalid permissions in gateway.access (nothing was registered):\n  ${errors.join('\n  ')}`,
    );
    this.name = 'GatewayPermissionsConfigError';
    this.errors = errors;
  }
}

const PERMISSION_KEYS = ['name', 'action'];

/**
 * Whitespace as the filter reads it (Rust's `char::is_whitespace`, the
 * Unicode White_Space property). JavaScript's `\s` differs: it lacks
 * U+0085 and adds U+FEFF, so it is spelt out here.
 */
const WHITESPACE =
  /[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

function typeName(v: JsonValue | undefined): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isName(s: string): boolean {
  return s.length > 0 && !WHITESPACE.test(s);
}

function isAction(s: string): s is PermissionAction {
  return (PERMISSION_ACTIONS as readonly string[]).includes(s);
}

/** `{ name, action }` or a bare name at `path`, or undefined after adding its errors. */
function readPermission(
  errors: string[],
  path: string,
  v: JsonValue | undefined,
): GatewayPermission | undefined {
  const nameRule = 'must be a permission name: a non-empty string without whitespace';
  if (typeof v === 'string') {
    if (!isName(v)) {
      errors.push(`${path}: ${nameRule}`);
      return undefined;
    }
    return { name: v, action: undefined, path };
  }
  if (!isObject(v)) {
    errors.push(
      `${path}: must be a permission name or { name, action }, but is of type ${typeName(v)}`,
    );
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(v)) {
    if (!PERMISSION_KEYS.includes(key)) {
      errors.push(
        `${path}.${key}: unknown key '${key}'; expected one of ${PERMISSION_KEYS.join(', ')}`,
      );
      ok = false;
    }
  }
  const name = v.name;
  if (name === undefined) {
    errors.push(`${path}.name: is required`);
    ok = false;
  } else if (typeof name !== 'string') {
    errors.push(`${path}.name: must be a string, but is of type ${typeName(name)}`);
    ok = false;
  } else if (!isName(name)) {
    errors.push(`${path}.name: ${nameRule}`);
    ok = false;
  }
  const action = v.action;
  let checked: PermissionAction | undefined;
  if (action !== undefined) {
    if (typeof action === 'string' && isAction(action)) {
      checked = action;
    } else {
      const shown =
        typeof action === 'string' ? `'${action}'` : `of type ${typeName(action)}`;
      errors.push(
        `${path}.action: ${shown} is not an action; expected one of ${PERMISSION_ACTIONS.join(', ')}`,
      );
      ok = false;
    }
  }
  if (!ok || typeof name !== 'string') return undefined;
  return { name, action: checked, path };
}

/** The permissions of one `gateway.access` entry (`path` is its config path). */
function readEntry(
  errors: string[],
  path: string,
  entry: JsonValue | undefined,
): GatewayPermission[] {
  if (!isObject(entry)) {
    errors.push(`${path}: must be an object, but is of type ${typeName(entry)}`);
    return [];
  }
  const found: GatewayPermission[] = [];
  const add = (p: string, v: JsonValue | undefined) => {
    const permission = readPermission(errors, p, v);
    if (permission) found.push(permission);
  };
  if (entry.permission !== undefined) add(`${path}.permission`, entry.permission);
  const rules = entry.rules;
  if (rules === undefined) return found;
  if (!Array.isArray(rules)) {
    errors.push(`${path}.rules: must be an array, but is of type ${typeName(rules)}`);
    return found;
  }
  rules.forEach((rule, i) => {
    const rulePath = `${path}.rules[${i}]`;
    if (!isObject(rule)) {
      errors.push(`${rulePath}: must be an object, but is of type ${typeName(rule)}`);
    } else if (rule.permission !== undefined) {
      add(`${rulePath}.permission`, rule.permission);
    }
  });
  return found;
}

/**
 * The permissions `gateway.access` names, one per name, in the order of
 * their first mention. `access` is the value at `gateway.access`
 * (undefined when the section is absent).
 *
 * @throws {@link GatewayPermissionsConfigError} listing every mistake.
 */
export function readGatewayPermissions(access: unknown): GatewayPermission[] {
  if (access === undefined) return [];
  const errors: string[] = [];
  const value = access as JsonValue;
  if (!isObject(value)) {
    throw new GatewayPermissionsConfigError([
      `gateway.access: must be an object, but is of type ${typeName(value)}`,
    ]);
  }
  const byName = new Map<string, GatewayPermission>();
  for (const [key, entry] of Object.entries(value)) {
    for (const p of readEntry(errors, `gateway.access.${key}`, entry)) {
      const first = byName.get(p.name);
      if (!first) {
        byName.set(p.name, p);
      } else if (first.action !== p.action) {
        const said = (a: PermissionAction | undefined) =>
          a === undefined ? 'no action' : `action '${a}'`;
        errors.push(
          `${p.path}: permission '${p.name}' has ${said(p.action)} here but ${said(first.action)} at ${first.path}; Backstage registers a permission once by name, so one name must have one action (use two names)`,
        );
      }
    }
  }
  if (errors.length > 0) throw new GatewayPermissionsConfigError(errors);
  return [...byName.values()];
}
