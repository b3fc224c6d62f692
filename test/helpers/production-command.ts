/**
 * The production command, read from the Dockerfile's last CMD: node's flags and the entry
 * file, and the build that makes the entry file (`ensureBuilt`). What runs agents as the
 * image runs them takes both from here: the test cluster of the cluster tests, the fault
 * suite and the failover benchmark (test/helpers/cluster.ts; test/cluster/failover.test.ts
 * checks an agent's command line) and the agents benchmark (bench/agents.ts). bench/run.ts
 * takes the flags alone for --tick and --plan-join, which run the sources under them
 * (test/bench-plan-join.test.ts checks it says so).
 *
 * Does not: parse any CMD other than the exec form `["node", flags…, "file.js"]` (it
 * throws, naming the line); build anything while dist/ is newer than every input; guard
 * against two processes building at once.
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

/**
 * Newest modification time (ms) of what dist/ is built from: the TypeScript sources, the
 * build's settings, the locked dependencies, the installed ones (npm rewrites
 * node_modules/.package-lock.json at every install) and the patch applied to them.
 */
function newestSource(root: string): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of ["agent", "leader", "shared", "types"]) walk(path.join(root, d));
  for (const f of ["tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json", "node_modules/.package-lock.json", "tools/build.mjs", "tools/patch-postgres.mjs"]) {
    const at = path.join(root, f);
    if (fs.existsSync(at)) newest = Math.max(newest, fs.statSync(at).mtimeMs);
  }
  return newest;
}

/**
 * Runs `npm run build` (tools/build.mjs) when `main` is missing or older than what it is
 * built from. The bundle is then dated when the build began, so that a source saved
 * during the build counts as newer; a failed build removes `main` (tsc may have written
 * an unbundled one before failing), so the next call builds again. `root`: the tree to
 * build (this one; test/production-build.test.ts gives a copy).
 */
export function ensureBuilt(main: string, log: (line: string) => void, root = ROOT): void {
  const built = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
  if (built >= newestSource(root)) return;
  log(built === 0 ? "dist/ is missing: building it (npm run build)" : "dist/ is older than the sources: building it again (npm run build)");
  const began = new Date();
  const r = spawnSync(process.execPath, [path.join(root, "tools", "build.mjs")], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    fs.rmSync(main, { force: true });
    throw new Error(`the build failed (exit ${r.status}); run npm run build to see why`);
  }
  fs.utimesSync(main, began, began);
}
