/**
 * The shapes of Redis replies the protocol (shared/redis-protocol.ts) accepts: each
 * checker returns the value typed, or throws ProtocolError naming the command and what
 * was wrong.
 *
 * Guarantees: a reply of the wrong shape (arity, type, an integer that is none) never
 * passes as a value. Does not: decode stored documents other processes wrote (those
 * decode to `undefined` when bad: shared/redis-documents.ts), nor send anything.
 */

/** Redis answered something the protocol does not allow. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly command: string,
    message: string,
    readonly reply: unknown,
  ) {
    super(`${command}: ${message}`);
  }
}

export function tuple(command: string, reply: unknown, n: number): unknown[] {
  if (!Array.isArray(reply) || reply.length !== n) throw new ProtocolError(command, `expected an array of ${n}`, reply);
  return reply;
}

export function list(command: string, v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new ProtocolError(command, `${what} is not an array`, v);
  return v;
}

export function str(command: string, v: unknown, what: string): string {
  if (typeof v !== "string") throw new ProtocolError(command, `${what} is not a string`, v);
  return v;
}

/** An integer, as Redis returns one (a number) or as a script passes a stored one (a decimal string). */
export function int(command: string, v: unknown, what: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new ProtocolError(command, `${what} is not an integer`, v);
  return n;
}

export function flag01(command: string, v: unknown): boolean {
  if (v !== 0 && v !== 1) throw new ProtocolError(command, "expected 0 or 1", v);
  return v === 1;
}
