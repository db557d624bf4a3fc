// The reference for the filter's CORS answers: the real `cors` middleware
// and `minimatch`, with the options built the way Backstage's
// readCorsOptions builds them from `backend.cors` (backend-defaults,
// rootHttpRouter/http/readCorsOptions.ts).
//
// stdin: a JSON array of cases, each
//   {"glob": pattern, "origin": string}                      → boolean
//   {"cors": backend.cors, "method", "origin"?, "acrh"?}     → the answer
// stdout: a JSON array of results, in order. An answer is
//   {"next": true, "headers": [...]} when the middleware let the request
//   go on (headers it set first), or {"status": n, "headers": [...]}.
'use strict';
const { Minimatch } = require('minimatch');
const cors = require('cors');

const matcherOptions = { nocase: true, noglobstar: true };

// Backstage's readStringArray: a string is a list of one, a false-like
// value is absent.
function stringArray(value) {
  if (typeof value === 'string') return value ? [value] : undefined;
  if (!value) return undefined;
  return value;
}

function options(cc) {
  const origins = stringArray(cc.origin);
  const out = {
    origin: origins && ((origin, cb) => {
      const ms = origins.map(p => new Minimatch(p, matcherOptions));
      cb(null, ms.some(m => m.match(origin ?? '')));
    }),
    methods: stringArray(cc.methods),
    allowedHeaders: stringArray(cc.allowedHeaders),
    exposedHeaders: stringArray(cc.exposedHeaders),
    credentials: cc.credentials,
    maxAge: cc.maxAge,
    preflightContinue: cc.preflightContinue,
    optionsSuccessStatus: cc.optionsSuccessStatus,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

function answer(c) {
  const headers = {};
  if (c.origin !== undefined) headers.origin = c.origin;
  if (c.acrh !== undefined) headers['access-control-request-headers'] = c.acrh;
  const req = { method: c.method, headers };
  const set = new Map();
  let result = null;
  const res = {
    statusCode: 200,
    getHeader: name => set.get(name.toLowerCase())?.[1],
    setHeader: (name, value) => set.set(name.toLowerCase(), [name.toLowerCase(), String(value)]),
    end: () => { result = { status: res.statusCode }; },
  };
  cors(options(c.cors))(req, res, err => {
    result = err ? { error: String(err) } : { next: true };
  });
  result.headers = [...set.values()];
  return result;
}

let input = '';
process.stdin.on('data', d => { input += d; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map(c =>
    c.glob !== undefined
      ? new Minimatch(c.glob, matcherOptions).match(c.origin)
      : answer(c));
  process.stdout.write(JSON.stringify(out));
});
