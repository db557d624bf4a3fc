#!/usr/bin/env python3
"""Validates Kubernetes resources against their published CRDs, as the API
server would on `kubectl apply --validate=strict`:

- the version's `openAPIV3Schema`, with the structural-schema rules turned
  into JSON Schema (`nullable`, `x-kubernetes-int-or-string`) and unknown
  fields as errors (objects with `properties` and no
  `x-kubernetes-preserve-unknown-fields` get `additionalProperties: false`),
  checked by `jsonschema` (Draft 2020-12);
- Kubernetes' own kinds (Secret, ConfigMap, Deployment) against
  Kubernetes' published schemas (`kubernetes-validate`, strict);
- every `x-kubernetes-validations` rule on the way, evaluated with
  `cel-python` with `self` bound to the value. Rules that use Kubernetes'
  own CEL library (`isURL`, `url`, `quantity`, `format`, …) or `oldSelf`
  cannot be evaluated by it: they are counted as skipped, by name, never
  silently passed.

Usage: crd_validate.py CRD_DIR < resources.json   (a JSON array)
Prints a JSON report: documents, violations (path and message), rules
checked, rules skipped (with why).
"""
import copy
import json
import pathlib
import sys

import celpy
import jsonschema
import yaml


def load_crds(directory):
    crds = {}
    for path in sorted(pathlib.Path(directory).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"]
            for v in doc["spec"]["versions"]:
                crds[(group, v["name"], kind)] = (v, path.name)
    return crds


def to_json_schema(node):
    """OpenAPI v3 (Kubernetes structural) → JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        for k in ("type",):
            out.pop(k, None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{k: v for k, v in out.items() if k != "anyOf"}}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if (
        out.get("type") in ("object", ["object", "null"])
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def apply_defaults(schema, value):
    """The API server's defaulting, before validation: a property that is
    absent gets its schema's `default`."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        for k, sub in schema.get("properties", {}).items():
            if k not in value and isinstance(sub, dict) and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
        for k, v in list(value.items()):
            if k in schema.get("properties", {}):
                value[k] = apply_defaults(schema["properties"][k], v)
            elif isinstance(schema.get("additionalProperties"), dict):
                value[k] = apply_defaults(schema["additionalProperties"], v)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


# Kubernetes' own kinds (Secret, ConfigMap, Deployment, …) have no CRD: they
# are checked against Kubernetes' published OpenAPI schemas for this
# version, as shipped by the kubernetes-validate package, strictly (unknown
# fields are errors).
CORE_GROUPS = ("", "apps")
KUBERNETES_VERSION = "1.34.0"


def core_violations(doc):
    try:
        import kubernetes_validate
    except ImportError:
        return [{"path": "/", "message": "kubernetes-validate is not installed: run `make schema-tools`"}]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        return [{"path": where or "/", "message": e.message[:300]}]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [{"path": "/", "message": f"no Kubernetes {KUBERNETES_VERSION} schema: {e}"}]
    return []


def cel_value(v):
    return celpy.json_to_cel(v)


class Rules:
    def __init__(self):
        self.checked = 0
        self.skipped = {}
        self.violations = []
        self.env = celpy.Environment()
        self.programs = {}

    def program(self, rule):
        if rule not in self.programs:
            try:
                ast = self.env.compile(rule)
                self.programs[rule] = self.env.program(ast)
            except Exception as e:  # noqa: BLE001 - reported as skipped
                self.programs[rule] = e
        return self.programs[rule]

    def check(self, schema, value, path):
        if not isinstance(schema, dict):
            return
        for r in schema.get("x-kubernetes-validations", []) or []:
            rule = r["rule"]
            if "oldSelf" in rule:
                self.skipped[rule] = "transition rule (oldSelf)"
                continue
            prog = self.program(rule)
            if isinstance(prog, Exception):
                self.skipped[rule] = f"cel-python cannot compile it: {type(prog).__name__}"
                continue
            try:
                result = prog.evaluate({"self": cel_value(value)})
            except Exception as e:  # noqa: BLE001
                self.skipped[rule] = f"cel-python cannot evaluate it: {type(e).__name__}"
                continue
            if isinstance(result, celpy.CELEvalError):
                # Kubernetes' own library (isURL, url, …) is not cel-python's.
                self.skipped[rule] = f"needs Kubernetes' CEL library: {str(result)[:80]}"
                continue
            self.checked += 1
            if not bool(result):
                self.violations.append({"path": path or "/", "message": r.get("message", rule), "rule": rule})
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for k, v in value.items():
                if k in props:
                    self.check(props[k], v, f"{path}.{k}")
                elif isinstance(schema.get("additionalProperties"), dict):
                    self.check(schema["additionalProperties"], v, f"{path}.{k}")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, v in enumerate(value):
                self.check(schema["items"], v, f"{path}[{i}]")


def main():
    crds = load_crds(sys.argv[1])
    docs = json.load(sys.stdin)
    report = {"documents": 0, "violations": [], "rules_checked": 0, "rules_skipped": {}, "kinds": {}}
    rules = Rules()
    for n, doc in enumerate(docs):
        report["documents"] += 1
        api = doc.get("apiVersion", "")
        group, _, version = api.rpartition("/")
        kind = doc.get("kind")
        key = (group, version, kind)
        name = f"[{n}] {kind} {doc.get('metadata', {}).get('name')}"
        report["kinds"][f"{kind} {api}"] = report["kinds"].get(f"{kind} {api}", 0) + 1
        if key not in crds and group in CORE_GROUPS:
            report["violations"].extend({"document": name, **v} for v in core_violations(doc))
            continue
        if key not in crds:
            report["violations"].append({"document": name, "path": "/", "message": f"no published CRD for {api} {kind}"})
            continue
        version_def, _ = crds[key]
        if not version_def.get("served", True):
            report["violations"].append({"document": name, "path": "/", "message": f"{api} is not served"})
        schema = copy.deepcopy(version_def["schema"]["openAPIV3Schema"])
        # Every object has these at its root, whatever its schema lists.
        props = schema.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        doc = apply_defaults(schema, copy.deepcopy(doc))
        validator = jsonschema.Draft202012Validator(to_json_schema(copy.deepcopy(schema)))
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            report["violations"].append({"document": name, "path": where or "/", "message": err.message[:300]})
        before = len(rules.violations)
        rules.check(schema, doc, "")
        for v in rules.violations[before:]:
            report["violations"].append({"document": name, **v})
    report["rules_checked"] = rules.checked
    report["rules_skipped"] = rules.skipped
    json.dump(report, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
