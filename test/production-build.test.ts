/**
 * The build the test clusters and benchmarks rely on (test/helpers/production-command.ts
 * `ensureBuilt`), on a private copy of the tree (its sources, build settings, lock files
 * and build scripts; node_modules linked): a missing bundle is built and dated from when
 * its build began (a source saved during a build counts as newer); a fresh one is left
 * alone; a failed build (a type error) throws and leaves no file behind that would look
 * up to date; the next call, the error mended, builds again.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "./helpers/production-command.js";

const ROOT = path.resolve(import.meta.dirname, "..");

function copyTree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fv7-build-"));
  for (const d of ["agent", "leader", "shared", "types"]) fs.cpSync(path.join(ROOT, d), path.join(root, d), { recursive: true });
  fs.mkdirSync(path.join(root, "tools"));
  for (const f of ["tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json", "tools/build.mjs", "tools/patch-postgres.mjs"]) fs.copyFileSync(path.join(ROOT, f), path.join(root, f));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(root, "node_modules"), "dir");
  return root;
}

describe("ensureBuilt", () => {
  const root = copyTree();
  const main = path.join(root, "dist", "agent", "main.js");
  const said: string[] = [];
  const log = (line: string) => said.push(line);

  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it("builds a missing bundle, dates it from the build's start, and leaves a fresh one alone", { timeout: 240_000 }, () => {
    const before = Date.now();
    ensureBuilt(main, log, root);
    const after = Date.now();
    expect(said).toEqual(["dist/ is missing: building it (npm run build)"]);
    // The bundle (esbuild's, not tsc's module): its banner is the first line.
    expect(fs.readFileSync(main, "utf8").startsWith('import { createRequire as __createRequire } from "node:module";')).toBe(true);
    // Dated when the build began, not when it ended (a build takes seconds).
    const dated = fs.statSync(main).mtimeMs;
    expect(dated).toBeGreaterThanOrEqual(before - 1000);
    expect(dated - before).toBeLessThan((after - before) / 2 + 1000);
    ensureBuilt(main, log, root);
    expect(said).toHaveLength(1);
  });

  it("throws on a failed build and removes the bundle, then builds again once the error is mended", { timeout: 240_000 }, () => {
    const file = path.join(root, "shared", "clock.ts");
    const text = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, `${text}\nexport const notANumber: number = "a";\n`);
    expect(() => ensureBuilt(main, log, root)).toThrow(/the build failed \(exit [1-9]\d*\)/);
    expect(said.at(-1)).toBe("dist/ is older than the sources: building it again (npm run build)");
    expect(fs.existsSync(main)).toBe(false);
    fs.writeFileSync(file, text);
    ensureBuilt(main, log, root);
    expect(said.at(-1)).toBe("dist/ is missing: building it (npm run build)");
    expect(fs.readFileSync(main, "utf8").startsWith('import { createRequire as __createRequire } from "node:module";')).toBe(true);
  });
});
