#!/usr/bin/env node
/**
 * `npm run build [-- tsc options, e.g. --outDir DIR]`: compiles agent/, leader/, shared/ and
 * types/ with tsc (tsconfig.build.json), then replaces the agent's entry, DIR/agent/main.js,
 * with ONE file holding it and every module and dependency it imports (esbuild). The
 * production command, `node … dist/agent/main.js`, runs that file; everything else in dist/
 * (fingerctl's dist/agent/cli.js and what it imports) stays as tsc wrote it.
 *
 * Why one file: started as ~300 separate ES modules (ours, zod's 95, hono's, postgres'),
 * an agent spent about 0.9 s of CPU in Node's module loader before it could listen; the
 * bundle starts in about 0.45 s and holds about 10 MB less. Sixteen agents starting on two
 * cores wait for each other's start-up CPU, so this halves the longest part of a fleet's
 * cold start (`npm run bench -- --agents`).
 *
 * The bundle is the same code: no minification (names and line structure stay, stack
 * traces stay readable; dist/agent/main.js.map maps them back to the sources), ES2022 for
 * Node 20. It is ASCII-only: esbuild escapes non-ASCII characters in code, and this
 * escapes those in comments, because a source text with a single non-ASCII character is
 * held by V8 at two bytes per character (4 MB instead of 2 for the whole agent).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const outDirAt = args.indexOf("--outDir");
const outDir = path.resolve(ROOT, outDirAt >= 0 && args[outDirAt + 1] ? args[outDirAt + 1] : "dist");

// The bundle carries the PostgreSQL driver: make sure it is the patched one (the script is
// idempotent; `npm install <package>` re-extracts packages without running it).
const patch = spawnSync(process.execPath, [path.join(ROOT, "tools", "patch-postgres.mjs")], { cwd: ROOT, stdio: "inherit" });
if (patch.status !== 0) process.exit(patch.status ?? 1);

const tsc = spawnSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json", ...args], { cwd: ROOT, stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const outfile = path.join(outDir, "agent", "main.js");
await build({
  absWorkingDir: ROOT,
  entryPoints: ["agent/main.ts"],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  charset: "ascii",
  logLevel: "warning",
  // Bundled CommonJS dependencies (ioredis, pino, prom-client) call require() for Node's
  // own modules; an ES module has no require of its own.
  banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
});
const text = fs.readFileSync(outfile, "utf8");
// Per UTF-16 unit (no `u` flag): a character outside the BMP becomes its surrogate pair.
const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
if (ascii !== text) fs.writeFileSync(outfile, ascii);
