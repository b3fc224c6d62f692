/**
 * Deadlines on the injected Clock: an answer within a time, or a failure.
 *
 * Guarantees: the timer is cancelled as soon as the answer comes; a late answer (or a
 * late failure) of the abandoned work is ignored, never unhandled. Does not: cancel the
 * work itself — it may still complete after its deadline.
 */
import { cancel, type Clock } from "./clock.js";

export interface Probe {
  readonly ok: boolean;
  readonly response_ms: number;
  readonly error?: string;
}

/** Runs `fn`; reports whether it answered within `timeoutMs` and how long it took. */
export async function probe(clock: Clock, fn: () => Promise<unknown>, timeoutMs: number): Promise<Probe> {
  const t0 = clock.now();
  const ctl = new AbortController();
  const elapsed = () => Math.round((clock.now() - t0) * 10) / 10;
  try {
    await Promise.race([fn(), clock.sleep(timeoutMs, ctl.signal).then(() => Promise.reject(new Error(`no answer within ${timeoutMs} ms`)))]);
    return { ok: true, response_ms: elapsed() };
  } catch (err) {
    return { ok: false, response_ms: Math.round(elapsed()), error: err instanceof Error ? err.message : String(err) };
  } finally {
    cancel(ctl);
  }
}

/** Resolves as `p`, or rejects once `ms` passed (the late answer is ignored). */
export async function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  const ctl = new AbortController();
  try {
    return await Promise.race([p, clock.sleep(ms, ctl.signal).then(() => Promise.reject(new Error(`${what}: no answer within ${ms} ms`)))]);
  } finally {
    cancel(ctl);
    p.catch(() => {}); // a late failure of an abandoned write is expected
  }
}
