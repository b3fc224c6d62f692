/**
 * fingerctl: the operator's command line. It talks to ANY agent's HTTP API (every agent
 * answers for the whole cluster) and validates every answer against the same zod shapes
 * the server is tested with.
 *
 *   fingerctl [--url URL] [--json] <command>
 *     status | instances | streams [--failing] | stream ID | retry ID | drain ID
 *     undrain ID | mode orchestrated|hashed | rebalance [--dry-run]
 *
 * URL: --url, else FINGERCTL_URL, else ORCHESTRATOR_URL, else http://localhost:8001.
 * Admin commands send ADMIN_TOKEN as a bearer token. The environment is handed in by the
 * launcher (bin/fingerctl.js): this module reads no process state, so tests call run().
 *
 * Exit codes: 0 done; 1 the agent refused or failed the request; 2 bad usage;
 * 3 the agent could not be reached.
 */
import type { z } from "zod";
import {
  drainBody,
  errorBody,
  modeBody,
  planBody,
  rebalanceBody,
  instancesBody,
  statusBody,
  streamsStatusBody,
  type InstancesBody,
  type PlanBody,
  type StatusBody,
  type StreamsStatusBody,
} from "../shared/status.js";
import { redactText } from "../shared/logger.js";
import { ago, ids, pct, table, time } from "./cli-format.js";
import { retryBody, streamDetailBody } from "../shared/status-health.js";
import { formatFailing, formatRetry, formatStream, labelsCell, workerCell } from "./cli-streams.js";

export const DEFAULT_URL = "http://localhost:8001";
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly fetch?: typeof fetch;
  /** Request timeout in ms (default 15 s). */
  readonly timeoutMs?: number;
}

type Env = Readonly<Record<string, string | undefined>>;

export const USAGE = `Usage: fingerctl [--url URL] [--json] <command>

Commands:
  status                       the cluster: leader, epoch, mode, instance and stream counts
  instances                    every instance: state, load against capacity, worker health
  streams                      stream totals, who serves which streams, recent changes
  streams --failing            failing and quarantined streams, with their last error
  stream ID                    one stream: owner, health, failures, recent moves
  retry ID                     release stream ID from quarantine and forget its failures
  drain ID                     stop giving instance ID streams and move its streams away
  undrain ID                   let instance ID serve again
  mode orchestrated|hashed     flip the cluster mode (hashed = the rollback)
  rebalance [--dry-run]        rebalance now; --dry-run prints the plan and changes nothing

Options:
  --url URL    any agent (default: $FINGERCTL_URL, $ORCHESTRATOR_URL, ${DEFAULT_URL})
  --json       print the agent's JSON answer instead of tables
  -h, --help   this text

Admin commands (retry, drain, undrain, mode, rebalance) send $ADMIN_TOKEN as a bearer token.
Exit codes: 0 ok, 1 refused or failed, 2 bad usage, 3 agent unreachable.
`;

class CliError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Args {
  url: string | undefined;
  json: boolean;
  dryRun: boolean;
  failing: boolean;
  help: boolean;
  words: string[];
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { url: undefined, json: false, dryRun: false, failing: false, help: false, words: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--json") a.json = true;
    else if (arg === "--dry-run" || arg === "--dry_run") a.dryRun = true;
    else if (arg === "--failing") a.failing = true;
    else if (arg === "-h" || arg === "--help" || arg === "help") a.help = true;
    else if (arg === "--url") {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new CliError(EXIT.usage, "--url needs a value, e.g. --url http://localhost:8001");
      a.url = v;
    } else if (arg.startsWith("--url=")) a.url = arg.slice(6);
    else if (arg.startsWith("-") && arg !== "-") throw new CliError(EXIT.usage, `unknown option ${arg}`);
    else a.words.push(arg);
  }
  return a;
}

export function agentUrl(flag: string | undefined, env: Env): string {
  const raw = [flag, env.FINGERCTL_URL, env.ORCHESTRATOR_URL].find((v) => v !== undefined && v.trim() !== "")?.trim() ?? DEFAULT_URL;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CliError(EXIT.usage, `not a URL: ${redactText(raw)} (expected e.g. http://localhost:8001)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new CliError(EXIT.usage, `the agent URL must start with http:// or https://, not ${u.protocol}//`);
  return u.toString().replace(/\/+$/, "");
}

class Client {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
    private readonly io: CliIo,
  ) {}

  async request<S extends z.ZodType>(method: string, path: string, shape: S, opts: { admin?: boolean; body?: unknown } = {}): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (opts.admin && this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const where = redactText(this.base);
    let res: Response;
    try {
      res = await (this.io.fetch ?? fetch)(`${this.base}${path}`, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.io.timeoutMs ?? 15_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = (err as Error).name === "TimeoutError" ? "no answer in time" : cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(EXIT.unreachable, `cannot reach the agent at ${where}: ${redactText(String(why))} (set --url, FINGERCTL_URL or ORCHESTRATOR_URL)`);
    }
    const text = await res.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new CliError(EXIT.refused, `${method} ${path} at ${where}: HTTP ${res.status}, not a JSON answer (is this a fingerv7 agent?)`);
    }
    if (!res.ok && !(res.status === 202 && opts.admin)) {
      const e = errorBody.safeParse(body);
      const bare = (body as { error?: unknown } | null)?.error;
      let msg = e.success ? e.data.message : typeof bare === "string" && bare.trim() ? redactText(bare) : `HTTP ${res.status}`;
      if (res.status === 401 && !this.token) msg += " ADMIN_TOKEN is not set in this environment.";
      throw new CliError(EXIT.refused, `the agent at ${where} refused ${method} ${path} (HTTP ${res.status}): ${msg}`);
    }
    const parsed = shape.safeParse(body);
    if (!parsed.success) {
      throw new CliError(EXIT.refused, `unexpected answer to ${method} ${path} from ${where}: ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message} (agent and fingerctl versions differ?)`);
    }
    return parsed.data;
  }
}

// ---- formatting ----------------------------------------------------------------------

export function formatStatus(s: StatusBody): string {
  const c = s.instances;
  const states = (["active", "warning", "recovering", "draining", "inactive", "removed"] as const).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
  const lr = s.last_rebalance;
  const lines: [string, string][] = [
    ["leader", s.leader ? `${s.leader.id} (epoch ${s.leader.epoch}${s.leader.ready ? "" : ", starting"})` : `none (last epoch ${s.epoch})`],
    ["mode", `${s.mode} (flag version ${s.mode_version}${s.mode_updated_by ? `, set by ${s.mode_updated_by}` : ""}${s.mode_updated_at ? ` at ${time(s.mode_updated_at)}` : ""})`],
    ["instances", `${c.total} total${states.length ? `: ${states.join(", ")}` : ""}`],
    ["streams", `${s.streams.active} active: ${s.streams.assigned} assigned, ${s.streams.unassigned} unassigned, ${s.streams.revoking} in handoff${s.streams.legacy ? `, ${s.streams.legacy} on legacy instances` : ""} (${s.streams.inactive} inactive in the catalog)`],
    ["last moves", lr ? `${time(lr.at)}: ${lr.moved} stream(s), ${Object.entries(lr.by_reason).map(([r, n]) => `${r} ${n}`).join(", ")}` : "none yet"],
  ];
  if (s.catalog_error) lines.push(["catalog", `ERROR ${s.catalog_error}`]);
  return `Cluster, as seen by ${s.answered_by} at ${time(s.generated_at)}\n` + lines.map(([k, v]) => `  ${k.padEnd(11)} ${v}`).join("\n") + "\n";
}

export function formatInstances(b: InstancesBody): string {
  const rows = b.instances.map((i) => [
    i.instance_id,
    i.is_leader ? "*" : "",
    i.status,
    i.current_streams,
    i.max_streams,
    pct(i.load_percentage),
    workerCell(i, ago),
    i.processed_total,
    i.errors_total,
    ago(i.last_heartbeat_ms_ago),
    i.mode ?? "-",
    i.version ?? "-",
    i.location || "-",
    labelsCell(i),
  ]);
  const s = b.summary;
  return (
    (rows.length ? table(["ID", "LEADER", "STATUS", "STREAMS", "CAPACITY", "LOAD", "WORKER", "PROCESSED", "ERRORS", "LAST HB", "MODE", "VERSION", "LOCATION", "LABELS"], rows) : "No instance has registered yet.\n") +
    `\n${s.live_instances} of ${s.total_instances} instance(s) live; capacity ${s.total_capacity}, assigned ${s.total_assigned}, average load ${pct(s.average_load)}, ` +
    `imbalance ${s.system_imbalance.toFixed(3)} (threshold ${s.imbalance_threshold}, max difference ${s.max_stream_difference} stream(s))\n`
  );
}

export function formatStreams(b: StreamsStatusBody): string {
  const t = b.streams;
  const h = b.health;
  let out = `Streams: ${t.active} active, ${t.assigned} assigned, ${t.unassigned} unassigned, ${t.revoking} in handoff${t.legacy ? `, ${t.legacy} on legacy instances` : ""} (mode ${b.mode})\n`;
  out += `Health:  ${h.ok} ok, ${h.failing} failing, ${h.quarantined} quarantined, ${h.unknown} unknown${h.failing + h.quarantined ? " (details: fingerctl streams --failing)" : ""}\n\n`;
  out += b.distribution.length ? table(["INSTANCE", "STATUS", "COUNT", "CAPACITY", "STREAMS"], b.distribution.map((d) => [d.instance_id, d.status, d.count, d.max_streams, ids(d.streams)])) : "No instance serves streams.\n";
  out += `\nUnassigned: ${b.unassigned.length ? ids(b.unassigned, 40) : "none"}\n`;
  if (b.catalog_error) out += `Catalog: ERROR ${b.catalog_error}\n`;
  out += "\nRecent changes:\n";
  out += b.recent_changes.length
    ? table(
        ["TIME", "KIND", "STREAM", "FROM", "TO", "REASON"],
        b.recent_changes.map((e) => [time(e.at), e.kind, e.stream_id === null ? "-" : String(e.stream_id), e.from ?? "-", e.to ?? "-", e.reason ?? "-"]),
      )
    : "  none\n";
  return out;
}

export function formatPlan(p: PlanBody): string {
  let out = p.moves.length
    ? table(["STREAM", "FROM", "TO", "REASON"], p.moves.map((m) => [String(m.stream_id), m.from ?? "-", m.to ?? "(unassigned)", m.reason]))
    : "No stream would move.\n";
  const reasons = Object.entries(p.by_reason).map(([r, n]) => `${r} ${n}`).join(", ");
  out += `\nTargets: ${Object.entries(p.targets).map(([id, n]) => `${id}=${n}`).join(" ") || "-"}\n`;
  if (p.unassigned.length) out += `Would stay unassigned: ${ids(p.unassigned, 40)}\n`;
  if (p.waiting.length) out += `Waiting for a handoff: ${ids(p.waiting, 40)}\n`;
  out += `Dry run (epoch ${p.epoch}): ${p.moves.length} move(s)${reasons ? ` (${reasons})` : ""}; nothing was changed.\n`;
  return out;
}

// ---- commands --------------------------------------------------------------------------

function one(words: string[], what: string): string {
  if (words.length !== 2) throw new CliError(EXIT.usage, `${words[0]} takes exactly one argument: ${what}`);
  return words[1]!;
}

export async function run(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  const emit = (json: boolean, body: unknown, text: () => string) => io.stdout(json ? `${JSON.stringify(body, null, 2)}\n` : text());
  try {
    const args = parseArgs(argv);
    if (args.help || args.words.length === 0) {
      (args.help ? io.stdout : io.stderr)(USAGE);
      return args.help ? EXIT.ok : EXIT.usage;
    }
    const cmd = args.words[0]!;
    if (args.dryRun && cmd !== "rebalance") throw new CliError(EXIT.usage, "--dry-run only applies to rebalance");
    if (args.failing && cmd !== "streams") throw new CliError(EXIT.usage, "--failing only applies to streams");
    const client = new Client(agentUrl(args.url, env), env.ADMIN_TOKEN?.trim() || undefined, io);
    switch (cmd) {
      case "status": {
        if (args.words.length > 1) throw new CliError(EXIT.usage, "status takes no argument");
        const b = await client.request("GET", "/status", statusBody);
        emit(args.json, b, () => formatStatus(b));
        return EXIT.ok;
      }
      case "instances": {
        if (args.words.length > 1) throw new CliError(EXIT.usage, "instances takes no argument");
        const b = await client.request("GET", "/instances", instancesBody);
        emit(args.json, b, () => formatInstances(b));
        return EXIT.ok;
      }
      case "streams": {
        if (args.words.length > 1) throw new CliError(EXIT.usage, "streams takes no argument (only --failing)");
        if (args.failing) {
          const b = await client.request("GET", "/streams/status?limit=20", streamsStatusBody);
          emit(args.json, { health: b.health, failing_streams: b.failing_streams, quarantined_streams: b.quarantined_streams }, () => formatFailing(b));
          return EXIT.ok;
        }
        const b = await client.request("GET", "/streams/status?limit=20", streamsStatusBody);
        emit(args.json, b, () => formatStreams(b));
        return EXIT.ok;
      }
      case "stream": {
        const sid = one(args.words, "the stream ID");
        const b = await client.request("GET", `/streams/${encodeURIComponent(sid)}`, streamDetailBody);
        emit(args.json, b, () => formatStream(b));
        return EXIT.ok;
      }
      case "retry": {
        const sid = one(args.words, "the stream ID");
        const b = await client.request("POST", `/streams/${encodeURIComponent(sid)}/retry`, retryBody, { admin: true });
        emit(args.json, b, () => formatRetry(b));
        return EXIT.ok;
      }
      case "drain":
      case "undrain": {
        const id = one(args.words, "the instance ID");
        const b = await client.request("POST", `/instances/${encodeURIComponent(id)}/${cmd}`, drainBody, { admin: true });
        emit(args.json, b, () => `${b.message}\n`);
        return EXIT.ok;
      }
      case "mode": {
        const mode = one(args.words, "orchestrated or hashed");
        if (mode !== "orchestrated" && mode !== "hashed") throw new CliError(EXIT.usage, `mode must be orchestrated or hashed, not ${JSON.stringify(mode)}`);
        const b = await client.request("PUT", "/mode", modeBody, { admin: true, body: { mode, by: "fingerctl" } });
        emit(args.json, b, () => `${b.message}\n`);
        return EXIT.ok;
      }
      case "rebalance": {
        if (args.words.length > 1) throw new CliError(EXIT.usage, "rebalance takes no argument (only --dry-run)");
        if (args.dryRun) {
          const b = await client.request("POST", "/rebalance?dry_run=1", planBody, { admin: true });
          emit(args.json, b, () => formatPlan(b));
        } else {
          const b = await client.request("POST", "/rebalance", rebalanceBody, { admin: true });
          emit(args.json, b, () => `${b.message}\n`);
        }
        return EXIT.ok;
      }
      default:
        throw new CliError(EXIT.usage, `unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr(`fingerctl: ${err.message}\n`);
      return err.code;
    }
    io.stderr(`fingerctl: ${redactText(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT.refused;
  }
}
