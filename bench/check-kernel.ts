/**
 * `npx tsx bench/check-kernel.ts`: checks that the SIMD kernel's embedded bytes
 * (shared/placement/hash-kernel.ts) are its WebAssembly text assembled by wabt's `wat2wasm`.
 * A maintenance aid, not a test: it needs wabt (Debian package `wabt`).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KERNEL_BASE64, KERNEL_WAT } from "../shared/placement/hash-kernel.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "kernel-"));
try {
  writeFileSync(path.join(dir, "k.wat"), KERNEL_WAT);
  execFileSync("wat2wasm", [path.join(dir, "k.wat"), "-o", path.join(dir, "k.wasm")], { stdio: "inherit" });
  const built = readFileSync(path.join(dir, "k.wasm")).toString("base64");
  if (built !== KERNEL_BASE64) {
    console.error("KERNEL_BASE64 does not match KERNEL_WAT; replace it with:\n" + built);
    process.exitCode = 1;
  } else console.log("kernel bytes match their source");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
