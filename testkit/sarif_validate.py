#!/usr/bin/env python3
"""Validates a SARIF log against the SARIF 2.1.0 JSON schema (draft-07,
testkit/sarif/sarif-schema-2.1.0.json), every violation reported.

Usage: sarif_validate.py SCHEMA < log.sarif
Exits 0 when the log is valid, 1 with one line per violation otherwise.
"""
import json
import sys

import jsonschema


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    log = json.load(sys.stdin)
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    for e in errors:
        path = "/".join(str(p) for p in e.absolute_path)
        print(f"{path}: {e.message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
