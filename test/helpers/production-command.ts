/**
 * The production command, read from the Dockerfile's last CMD: node's flags and the entry
 * file, and the build that makes the entry file (`ensureBuilt`). What runs agents or plans
 * as the image runs them takes both from here, so it follows the image: the test cluster
 * of both suites and of the failover benchmark (test/helpers/cluster.ts), the agents
 * benchmark (bench/agents.ts), bench/run.ts for --tick and --plan-join, and the test that
 * checks those.
 *
 * Does not: parse any CMD other than the exec form `["node", flags…, "file.js"]` (it
 * throws, naming the line); build anything while dist/ is newer than every source.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function productionCommand(): { flags: string[]; main: string } {
  const cmd = fs
    .readFileSync(path.join(ROOT, "Dockerfile"), "utf8")
    .split("\n")
    .filter((l) => /^CMD\s/.test(l))
    .at(-1);
  const argv = cmd ? (JSON.parse(cmd.replace(/^CMD\s+/, "")) as string[]) : [];
  if (argv[0] !== "node" || !argv.at(-1)?.endsWith(".js")) throw new Error(`the Dockerfile's CMD is not "node [flags] file.js": ${cmd}`);
  return { flags: argv.slice(1, -1), main: path.join(ROOT, argv.at(-1)!) };
}

/** Newest modification time (ms) of what dist/ is built from: the TypeScript sources, the build's settings, the locked dependencies and the patch applied to them. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of ["agent", "leader", "shared", "types"]) walk(path.join(ROOT, d));
  for (const f of ["tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json", "tools/build.mjs", "tools/patch-postgres.mjs"]) newest = Math.max(newest, fs.statSync(path.join(ROOT, f)).mtimeMs);
  return newest;
}

/** Runs `npm run build` (tools/build.mjs) when `main` is missing or older than a source; the bundle is written last. */
export function ensureBuilt(main: string, log: (line: string) => void): void {
  const built = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
  if (built >= newestSource()) return;
  log(built === 0 ? "dist/ is missing: building it (npm run build)" : "dist/ is older than the sources: building it again (npm run build)");
  const r = spawnSync(process.execPath, [path.join(ROOT, "tools", "build.mjs")], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`the build failed (exit ${r.status}); run npm run build to see why`);
}
