/**
 * How one setting's value is read and checked: the small readers loadConfig
 * (shared/config.ts) is built from, and the one error they throw.
 *
 * Guarantees: a bad value throws ConfigError whose message is ONE line naming the
 * setting, the value (a URL's password hidden) and what was expected; of several names
 * for one setting, the first one set wins. Does not: read `process.env` — every reader
 * takes the `env` that loadConfig was handed — or check settings against each other
 * (loadConfig does that).
 */
import net from "node:net";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads the first of `names` that is set to a non-empty value. */
export function pick(env: Env, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return { name, value: value.trim() };
  }
  return undefined;
}

export function bad(name: string, value: string, expected: string): ConfigError {
  return new ConfigError(name, `Invalid setting ${name}=${JSON.stringify(value)}: expected ${expected}.`);
}

export function seconds(env: Env, names: readonly string[], fallbackMs: number, opts: { min?: number; max?: number } = {}): number {
  const got = pick(env, names);
  if (!got) return fallbackMs;
  const n = Number(got.value);
  const min = opts.min ?? 0.01;
  const max = opts.max ?? 86_400;
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(got.value) || !Number.isFinite(n) || n < min || n > max) {
    throw bad(got.name, got.value, `a duration in seconds between ${min} and ${max} (decimals allowed, e.g. 5 or 0.2)`);
  }
  return Math.round(n * 1000);
}

export function integer(env: Env, names: readonly string[], fallback: number, min: number, max: number): number {
  const got = pick(env, names);
  if (!got) return fallback;
  const n = Number(got.value);
  if (!/^\d+$/.test(got.value) || n < min || n > max) {
    throw bad(got.name, got.value, `a whole number between ${min} and ${max}`);
  }
  return n;
}

export function ratio(env: Env, names: readonly string[], fallback: number): number {
  const got = pick(env, names);
  if (!got) return fallback;
  const n = Number(got.value);
  if (!/^\d*(\.\d+)?$/.test(got.value) || !Number.isFinite(n) || n <= 0 || n >= 1) {
    throw bad(got.name, got.value, "a fraction between 0 and 1 (e.g. 0.15 for 15 %)");
  }
  return n;
}

export function boolean(env: Env, names: readonly string[], fallback: boolean): boolean {
  const got = pick(env, names);
  if (!got) return fallback;
  const v = got.value.toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw bad(got.name, got.value, "true or false");
}

export function matching(env: Env, names: readonly string[], fallback: string, re: RegExp, expected: string): string {
  const got = pick(env, names);
  if (!got) return fallback;
  if (!re.test(got.value)) throw bad(got.name, got.value, expected);
  return got.value;
}

export function oneOf<T extends string>(env: Env, names: readonly string[], fallback: T, allowed: readonly T[]): T {
  const got = pick(env, names);
  if (!got) return fallback;
  const v = got.value.toLowerCase() as T;
  if (!allowed.includes(v)) throw bad(got.name, got.value, `one of ${allowed.join(", ")}`);
  return v;
}

export function url(name: string, value: string, protocols: readonly string[]): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw bad(name, redactUrl(value), `a URL such as ${protocols[0]}//host:port`);
  }
  if (!protocols.includes(parsed.protocol)) throw bad(name, redactUrl(value), `a URL starting with ${protocols.join(" or ")}//`);
  return value;
}

/** A list of CIDRs or single addresses ("10.0.0.0/8, ::1"), normalised to CIDRs. */
export function cidrs(env: Env, names: readonly string[], fallback: readonly string[]): string[] {
  const got = pick(env, names);
  if (!got) return [...fallback];
  const out: string[] = [];
  for (const part of got.value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [addr = "", bits, extra] = part.split("/");
    const family = net.isIP(addr);
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (family === 0 || extra !== undefined || (bits !== undefined && !/^\d{1,3}$/.test(bits)) || prefix > max) {
      throw bad(got.name, got.value, "addresses or CIDRs separated by commas, e.g. 127.0.0.1/32,::1/128 or 10.0.0.0/8");
    }
    out.push(`${addr}/${prefix}`);
  }
  if (out.length === 0) throw bad(got.name, got.value, "at least one address or CIDR");
  return out;
}

/** Hides the password of a URL, for logs and status output. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return value.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
  }
}
