#!/usr/bin/env node
// fingerctl launcher. In a clone (after `npm ci`) it runs the TypeScript source through
// tsx; where tsx is absent (a production install) it runs the build from `npm run build`.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

async function load() {
  const source = path.join(root, "agent", "cli.ts");
  if (existsSync(source)) {
    let api;
    try {
      api = await import("tsx/esm/api");
    } catch {
      api = undefined; // no dev dependencies installed: fall through to the build
    }
    if (api) {
      api.register();
      return import(pathToFileURL(source).href);
    }
  }
  const built = path.join(root, "dist", "agent", "cli.js");
  if (existsSync(built)) return import(pathToFileURL(built).href);
  process.stderr.write("fingerctl: cannot start: run `npm ci` (for tsx) or `npm run build` first\n");
  process.exit(2);
}

const cli = await load();
process.exitCode = await cli.run(process.argv.slice(2), process.env, {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
