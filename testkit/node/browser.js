// Loads a page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and prints what the page reported in
// `window.__result` as JSON. Usage: node browser.js <url> [timeout-ms]
// Playwright gives the browser a fresh, empty profile of its own.
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

async function main() {
  const [url, timeout = '20000'] = process.argv.slice(2);
  if (!fs.existsSync(executablePath)) {
    throw new Error(`${executablePath} is missing: run \`make browser\` (Debian's chromium)`);
  }
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage();
    const console_ = [];
    page.on('console', m => console_.push(m.text()));
    await page.goto(url);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: Number(timeout) });
    const result = await page.evaluate(() => window.__result);
    process.stdout.write(JSON.stringify({ result, console: console_ }));
  } finally {
    await browser.close();
  }
}

main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
