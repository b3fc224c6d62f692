/**
 * The production command, read from the Dockerfile's last CMD: node's flags and the entry
 * file. What runs agents to measure or test them as the image runs them (the test
 * cluster, the benchmarks) takes its flags from here, so they follow the image.
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
