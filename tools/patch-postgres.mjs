#!/usr/bin/env node
/**
 * Runs after every `npm ci`/`npm install` (package.json "postinstall"): fixes the faults
 * of the PostgreSQL driver, postgres (porsager) 3.4.9, that let a connection closed by the
 * server kill the whole process, in node_modules, the same way in its three builds (src/
 * for ES modules, cjs/src/ for require, cf/src/ for Workers). PostgreSQL closes
 * connections when a backend is terminated (pg_terminate_backend), on a fast shutdown or
 * restart, or when a pooler fails over; the leader writes in transactions every few
 * seconds and every agent opens connections again after each such event, so one restart of
 * PostgreSQL could take agents down. None of the fixes is released upstream.
 *
 * 1. Inside a transaction: the driver sends ROLLBACK on the connection after it closed; the
 *    write, queued for the next turn of the event loop, finds no socket and throws a
 *    TypeError no caller can catch (upstream issues #1066 and #1154, pull request #1168).
 *    Now a statement on a connection whose socket is gone fails at once with
 *    CONNECTION_CLOSED (the transaction rejects with the error that closed it) and the
 *    connection stays filed as closed, so the pool connects it again (filed as busy, a pool
 *    of one would wait for ever); a queued write that finds no socket is dropped (its
 *    statements were failed with CONNECTION_CLOSED when the connection closed); a closed
 *    connection forgets the bytes still queued, so a reconnection never sends an old
 *    statement ahead of its start-up message.
 * 2. While connecting: each new connection first reads the array types (fetch_types), and
 *    the promise of that read is dropped, so its failure (the backend terminated or the
 *    socket reset at that moment) is an unhandled rejection, which ends a Node process
 *    (upstream issues #279, #1192, #1205, #1223). Now that promise's failure is ignored: the
 *    statement waiting for the connection is failed or sent again on a new connection by
 *    the driver's own close and error handling, as it already was.
 * 3. A server error that arrived just before the connection closed was kept and replayed
 *    onto the first statement of the next connection (#1223). Now a closed connection
 *    forgets it.
 *
 * Also run by `npm run build` (tools/build.mjs) before it bundles the driver, because
 * `npm install <package>` and `npm update` re-extract packages without running it.
 *
 * Guarantees: applied exactly once (a marker at each edit says so; a file with only some
 * of them fails, as does a missing build); each file written whole or not at all; if the
 * driver's text is not the text this patch was written for (another version), the
 * install fails with a message naming this file, rather than running an unpatched driver
 * unnoticed. Checked by
 * test/integration/db-terminated.test.ts (a backend terminated inside a transaction and
 * while a connection starts) and by the fault scenario
 * test/faults/pg-terminated-in-transaction.fault.ts.
 * Does not: change anything else in the driver, or patch a driver installed elsewhere.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DRIVER = path.join(ROOT, "node_modules", "postgres");
const VERSION = "3.4.9";
export const MARKER = "/* fingerv7-sidecar: closed-socket guard */";

const EDITS = [
  {
    what: "a statement on a closed connection fails at once",
    from: "    if (terminated)\n      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))\n",
    to:
      "    if (terminated)\n      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))\n\n" +
      `    ${MARKER}\n    if (!socket) {\n      queryError(q, Errors.connection('CONNECTION_CLOSED', options))\n      return true\n    }\n`,
  },
  {
    what: "a queued write without a socket is dropped",
    from: "  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n",
    to:
      "  function nextWrite(fn) {\n" +
      `    ${MARKER}\n    if (!socket) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      return false\n    }\n` +
      "    const x = socket.write(chunk, fn)\n",
  },
  {
    what: "a closed connection forgets its queued bytes and its last server error",
    from: "    remaining = 0\n    incomings = null\n    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)\n",
    to:
      "    remaining = 0\n    incomings = null\n    clearImmediate(nextWriteTimer)\n" +
      `    ${MARKER}\n    chunk = nextWriteTimer = null\n    errorResponse = null\n` +
      "    socket.removeListener('data', data)\n",
  },
  {
    what: "a failed array-types read while connecting is not an unhandled rejection",
    from: "      if (needsTypes) {\n        initial.reserve && (initial = null)\n        return fetchArrayTypes()\n      }\n",
    to:
      "      if (needsTypes) {\n        initial.reserve && (initial = null)\n" +
      `        ${MARKER}\n        return fetchArrayTypes().catch(() => { /* failed or retried by the close and error handling */ })\n` +
      "      }\n",
  },
];

function fail(message) {
  process.stderr.write(`tools/patch-postgres.mjs: ${message}\n`);
  process.exit(1);
}

if (!fs.existsSync(DRIVER)) process.exit(0); // nothing installed here (npm ci --omit of everything)
const version = JSON.parse(fs.readFileSync(path.join(DRIVER, "package.json"), "utf8")).version;
if (version !== VERSION) fail(`postgres ${version} is installed; this patch was written for ${VERSION}. Check whether ${version} still needs it (a ROLLBACK sent after the socket closed), then update or remove the patch.`);

let patched = 0;
for (const build of ["src", "cjs/src", "cf/src"]) {
  const file = path.join(DRIVER, build, "connection.js");
  if (!fs.existsSync(file)) fail(`${path.relative(ROOT, file)} is missing; reinstall with npm ci`);
  let text = fs.readFileSync(file, "utf8");
  const marks = text.split(MARKER).length - 1;
  if (marks === EDITS.length) continue; // patched already
  if (marks !== 0) fail(`${path.relative(ROOT, file)} is partly patched (${marks} of ${EDITS.length} edits); reinstall with npm ci`);
  for (const e of EDITS) {
    const at = text.indexOf(e.from);
    if (at < 0 || text.indexOf(e.from, at + 1) >= 0) fail(`${path.relative(ROOT, file)}: the text for "${e.what}" is not where it was expected; the driver changed`);
    text = text.slice(0, at) + e.to + text.slice(at + e.from.length);
  }
  // Written whole or not at all: a cut-short write must not leave a file that looks patched.
  fs.writeFileSync(`${file}.patching`, text);
  fs.renameSync(`${file}.patching`, file);
  patched++;
}
if (patched > 0) process.stdout.write(`tools/patch-postgres.mjs: postgres ${VERSION} patched (${patched} builds): no uncaught error when PostgreSQL closes a connection\n`);
