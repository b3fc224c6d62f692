/**
 * The production command, read from the Dockerfile's last CMD: node's flags and the entry
 * file. The benchmarks that run agents or plans as the image runs them (bench/agents.ts,
 * and bench/run.ts for --tick and --plan-join) and the test that checks they do take the
 * flags from here, so they follow the image. The test cluster does not: it starts its
 * agents from the TypeScript sources, where --single-threaded slows the start (README).
 *
 * Does not: parse any CMD other than the exec form `["node", flags…, "file.js"]` (it
 * throws, naming the line).
 */
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
