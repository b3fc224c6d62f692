/**
 * A private Redis Sentinel group for tests: a primary, one replica and three sentinels,
 * each a redis-server process on a free port, every file in one temp dir (sentinels
 * rewrite their config file, so each gets its own writable copy). redis-server missing
 * fails loudly.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort, waitFor } from "./cluster.js";

export const MASTER_NAME = "mymaster";

function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir, bin);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

export interface SentinelTimings {
  readonly downAfterMs: number;
  readonly failoverTimeoutMs: number;
}

export class SentinelGroup {
  /** Data nodes by port (the primary and the replica swap roles on failover). */
  readonly nodes = new Map<number, ChildProcess>();
  readonly sentinels = new Map<number, ChildProcess>();
  private constructor(
    readonly dir: string,
    private readonly bin: string,
    readonly timings: SentinelTimings,
  ) {}

  static async start(timings: SentinelTimings): Promise<SentinelGroup> {
    const bin = which("redis-server");
    if (!bin) throw new Error("redis-server is not on PATH: the Sentinel test needs it (Debian: apt-get install redis-server); it is never skipped");
    const g = new SentinelGroup(fs.mkdtempSync(path.join(os.tmpdir(), "fv7-sentinel-")), bin, timings);
    try {
      const [primary, replica, ...sentinelPorts] = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
      g.startNode(primary!);
      await g.waitPing(primary!);
      g.startNode(replica!, primary!);
      await g.waitPing(replica!);
      await waitFor(() => g.cli(replica!, "INFO", "replication").includes("master_link_status:up"), 20_000, "the replica to sync");
      for (const port of sentinelPorts) g.startSentinel(port, primary!);
      for (const port of sentinelPorts) await g.waitPing(port);
      await g.agreed(primary!, 1);
      return g;
    } catch (err) {
      await g.stop();
      throw err;
    }
  }

  get sentinelList(): string {
    return [...this.sentinels.keys()].map((p) => `127.0.0.1:${p}`).join(",");
  }

  private startNode(port: number, replicaOf?: number): void {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir, "--dbfilename", `dump-${port}.rdb`, "--daemonize", "no", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"];
    if (replicaOf) args.push("--replicaof", "127.0.0.1", String(replicaOf));
    this.nodes.set(port, spawn(this.bin, args, { stdio: "ignore" }));
  }

  private startSentinel(port: number, primary: number): void {
    const conf = path.join(this.dir, `sentinel-${port}.conf`);
    fs.writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${this.dir}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${this.timings.downAfterMs}`,
        `sentinel failover-timeout ${MASTER_NAME} ${this.timings.failoverTimeoutMs}`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        "",
      ].join("\n"),
    );
    this.sentinels.set(port, spawn(this.bin, [conf, "--sentinel"], { stdio: "ignore" }));
  }

  cli(port: number, ...args: string[]): string {
    return execFileSync("redis-cli", ["-p", String(port), ...args], { stdio: ["ignore", "pipe", "ignore"], timeout: 3000 }).toString();
  }

  private async waitPing(port: number): Promise<void> {
    await waitFor(() => {
      try {
        return this.cli(port, "PING").includes("PONG");
      } catch {
        return false;
      }
    }, 10_000, `redis-server on ${port}`);
  }

  /** The master port each live sentinel reports. */
  async masters(): Promise<(number | undefined)[]> {
    return Promise.all(
      [...this.sentinels.keys()].map(async (port) => {
        const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 1000 });
        r.on("error", () => {});
        try {
          await r.connect();
          const addr = (await r.call("SENTINEL", "get-master-addr-by-name", MASTER_NAME)) as [string, string] | null;
          return addr ? Number(addr[1]) : undefined;
        } catch {
          return undefined;
        } finally {
          r.disconnect();
        }
      }),
    );
  }

  /** What one sentinel knows of the group: flat reply of SENTINEL MASTER, as an object. */
  async masterInfo(sentinelPort: number): Promise<Record<string, string>> {
    const flat = this.cli(sentinelPort, "SENTINEL", "MASTER", MASTER_NAME).trim().split("\n");
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
    return out;
  }

  /**
   * Until every sentinel names `master`, knows the two others and sees `replicas` healthy
   * replicas, and the master really is a master with its replicas' links up.
   */
  async agreed(master: number, replicas: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => {
      if (!(await this.masters()).every((m) => m === master)) return false;
      for (const port of this.sentinels.keys()) {
        const info = await this.masterInfo(port);
        if (info.flags !== "master" || Number(info["num-other-sentinels"]) !== this.sentinels.size - 1 || Number(info["num-slaves"]) < replicas) return false;
        const lines = this.cli(port, "SENTINEL", "REPLICAS", MASTER_NAME).split("\n").map((l) => l.trim());
        const healthy = lines.filter((l, i) => lines[i - 1] === "flags" && l === "slave").length;
        const linked = lines.filter((l, i) => lines[i - 1] === "master-link-status" && l === "ok").length;
        if (healthy < replicas || linked < replicas) return false;
      }
      const repl = this.cli(master, "INFO", "replication");
      return repl.includes("role:master") && (repl.match(/state=online/g) ?? []).length >= replicas;
    }, timeoutMs, `the sentinels to agree on master ${master} with ${replicas} replica(s)`, 200);
  }

  /** The data node every sentinel names, or throws. */
  async master(): Promise<number> {
    const ms = await this.masters();
    if (ms[0] === undefined || !ms.every((m) => m === ms[0])) throw new Error(`sentinels disagree: ${ms.join(",")}`);
    return ms[0];
  }

  /** kill -9 of a data node; it stays down. */
  async kill9(port: number): Promise<void> {
    const p = this.nodes.get(port);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
    this.nodes.delete(port);
  }

  async stop(): Promise<void> {
    const all = [...this.sentinels.values(), ...this.nodes.values()].filter((p) => p.exitCode === null && p.signalCode === null);
    await Promise.all(
      all.map((p) => {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGKILL");
        return exited;
      }),
    );
    this.sentinels.clear();
    this.nodes.clear();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
