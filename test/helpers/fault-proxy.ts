/**
 * A small Toxiproxy-style TCP proxy (node:net), one per agent per store, controlled from
 * the test process. Guarantees:
 * - It listens on 127.0.0.1 only and forwards to a loopback upstream only (it throws
 *   otherwise): it can never reach or expose anything beyond this machine.
 * - Bytes in one direction are delivered in order or not at all; a fault never reorders.
 * - Modes (set at any time, the last call wins; `pass()` heals):
 *     pass()                 forward both ways (with `latency` if set);
 *     blackhole()            accept and keep connections, forward nothing either way;
 *     resetThenBlackhole()   RST every current connection, then blackhole new ones;
 *     refuse()               stop listening (connect → ECONNREFUSED), RST every current connection;
 *     oneWayLoss(direction)  forward nothing in one direction: "upstream" = agent → store
 *                            (requests), "downstream" = store → agent (replies);
 *     latency(rttMs)         add rttMs to a round trip (half each way), combined with the mode;
 *     retarget(port)         RST every current connection and send new ones to another
 *                            loopback upstream (a VIP or DNS name now naming another server).
 * - What a blocked direction does with the bytes it does not forward is the `lost` policy:
 *     "hold" (default): kept and delivered in order when the direction opens again, as TCP
 *       retransmission would after a partition shorter than its retransmission timeout
 *       (a connection never silently loses bytes in the middle of its stream);
 *     "drop": discarded, and the connection is RST when the direction opens again (a TCP
 *       stream with a hole cannot go on; this is what a long loss ends in).
 *   A FIN or RST from one side is, likewise, held until its direction opens.
 * - During a blackhole a new connection is accepted but the upstream is only dialled when
 *   the proxy heals, so the store sees nothing at all from it until then.
 */
import net from "node:net";

export type Direction = "upstream" | "downstream";
export type LostPolicy = "hold" | "drop";
type Mode = { kind: "pass" } | { kind: "blackhole" } | { kind: "refuse" } | { kind: "oneWayLoss"; direction: Direction };
type Item = Buffer | "end" | "reset";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export interface FaultProxyOptions {
  /** Upstream port on a loopback address. */
  readonly upstreamPort: number;
  readonly upstreamHost?: string;
  /** Port to listen on (127.0.0.1); 0 = any free port (kept across refuse/heal). */
  readonly port?: number;
  readonly lost?: LostPolicy;
  /** A label for logs and histories ("a1/redis"). */
  readonly name?: string;
}

export class FaultProxy {
  readonly name: string;
  private server: net.Server | undefined;
  private portNo = 0;
  private mode: Mode = { kind: "pass" };
  private rttMs = 0;
  private lostPolicy: LostPolicy;
  private readonly pipes = new Set<Pipe>();
  private upstream: number;
  readonly stats = { accepted: 0, upstreamBytes: 0, downstreamBytes: 0, resets: 0 };

  constructor(private readonly o: FaultProxyOptions) {
    const host = o.upstreamHost ?? "127.0.0.1";
    if (!LOOPBACK.has(host)) throw new Error(`fault proxy: upstream ${host} is not a loopback address`);
    this.name = o.name ?? `proxy→${o.upstreamPort}`;
    this.lostPolicy = o.lost ?? "hold";
    this.upstream = o.upstreamPort;
  }

  get port(): number {
    return this.portNo;
  }

  get upstreamHost(): string {
    return this.o.upstreamHost ?? "127.0.0.1";
  }

  get upstreamPort(): number {
    return this.upstream;
  }

  /** Current mode, for histories ("pass", "blackhole", "oneWayLoss(downstream)", + latency, + upstream when moved). */
  describe(): string {
    const m = this.mode.kind === "oneWayLoss" ? `oneWayLoss(${this.mode.direction})` : this.mode.kind;
    const moved = this.upstream === this.o.upstreamPort ? "" : `→:${this.upstream}`;
    return `${this.rttMs > 0 ? `${m}+latency(${this.rttMs}ms)` : m}${moved}`;
  }

  static async start(o: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(o);
    await p.listen(o.port ?? 0);
    return p;
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.portNo = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private async stopListening(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    // Stops accepting at once; close()'s callback would wait for every open connection.
    s?.close();
    await new Promise((r) => setImmediate(r));
  }

  private accept(client: net.Socket): void {
    if (this.mode.kind === "refuse") {
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted++;
    const pipe = new Pipe(this, client);
    this.pipes.add(pipe);
    pipe.onGone = () => this.pipes.delete(pipe);
    if (!this.blocks("upstream") && !this.blocks("downstream")) pipe.dial();
  }

  /** Whether a direction forwards nothing right now. */
  blocks(d: Direction): boolean {
    return this.mode.kind === "blackhole" || (this.mode.kind === "oneWayLoss" && this.mode.direction === d);
  }

  get lost(): LostPolicy {
    return this.lostPolicy;
  }

  get oneWayMs(): number {
    return this.rttMs / 2;
  }

  count(d: Direction, n: number): void {
    if (d === "upstream") this.stats.upstreamBytes += n;
    else this.stats.downstreamBytes += n;
  }

  private async set(mode: Mode): Promise<void> {
    const wasRefusing = this.mode.kind === "refuse";
    this.mode = mode;
    if (mode.kind === "refuse") {
      await this.stopListening();
      this.resetAll();
      return;
    }
    if (wasRefusing) await this.relisten();
    for (const p of [...this.pipes]) p.reopen();
  }

  private async relisten(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await this.listen(this.portNo);
        return;
      } catch (err) {
        if (i >= 20) throw new Error(`fault proxy ${this.name}: cannot listen again on ${this.portNo}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** RST every current connection (both sides). */
  resetAll(): void {
    for (const p of [...this.pipes]) p.reset();
  }

  pass(): Promise<void> {
    return this.set({ kind: "pass" });
  }

  blackhole(): Promise<void> {
    return this.set({ kind: "blackhole" });
  }

  async resetThenBlackhole(): Promise<void> {
    this.resetAll();
    await this.set({ kind: "blackhole" });
  }

  refuse(): Promise<void> {
    return this.set({ kind: "refuse" });
  }

  oneWayLoss(direction: Direction, lost: LostPolicy = this.lostPolicy): Promise<void> {
    this.lostPolicy = lost;
    return this.set({ kind: "oneWayLoss", direction });
  }

  /** RSTs every current connection; new ones go to `port` on the same loopback host (the mode is kept). */
  retarget(port: number): void {
    this.upstream = port;
    this.resetAll();
  }

  /** Added round-trip time (half each way); 0 removes it. Applies on top of the mode. */
  latency(rttMs: number): void {
    this.rttMs = Math.max(0, rttMs);
  }

  async close(): Promise<void> {
    this.mode = { kind: "pass" };
    await this.stopListening();
    for (const p of [...this.pipes]) p.destroy();
  }
}

/** One client connection and its upstream connection. */
class Pipe {
  private server: net.Socket | undefined;
  private dialled = false;
  private gone = false;
  /** Items a blocked direction did not forward (policy "hold"). */
  private readonly held: Record<Direction, Item[]> = { upstream: [], downstream: [] };
  /** A blocked direction dropped bytes (policy "drop"): RST when it opens. */
  private damaged = false;
  /** Latency queues. */
  private readonly queue: Record<Direction, { due: number; item: Item }[]> = { upstream: [], downstream: [] };
  private readonly timer: Record<Direction, NodeJS.Timeout | undefined> = { upstream: undefined, downstream: undefined };
  onGone: () => void = () => {};

  constructor(
    private readonly proxy: FaultProxy,
    private readonly client: net.Socket,
  ) {
    client.setNoDelay(true);
    client.on("data", (b: Buffer) => this.incoming("upstream", b));
    client.on("end", () => this.incoming("upstream", "end"));
    client.on("error", () => this.incoming("upstream", "reset"));
    client.on("close", () => this.maybeGone());
  }

  dial(): void {
    if (this.dialled || this.gone) return;
    this.dialled = true;
    const s = net.connect({ port: this.proxy.upstreamPort, host: this.proxy.upstreamHost });
    this.server = s;
    s.setNoDelay(true);
    s.on("data", (b: Buffer) => this.incoming("downstream", b));
    s.on("end", () => this.incoming("downstream", "end"));
    s.on("error", () => this.incoming("downstream", "reset"));
    s.on("close", () => this.maybeGone());
    this.flushHeld("upstream");
  }

  private target(d: Direction): net.Socket | undefined {
    return d === "upstream" ? this.server : this.client;
  }

  private incoming(d: Direction, item: Item): void {
    if (this.gone) return;
    if (this.proxy.blocks(d) || (d === "upstream" && !this.dialled)) {
      if (this.proxy.lost === "drop" && typeof item !== "string" && this.proxy.blocks(d)) {
        this.damaged = true;
        return;
      }
      this.held[d].push(item);
      return;
    }
    this.send(d, item);
  }

  private send(d: Direction, item: Item): void {
    const lat = this.proxy.oneWayMs;
    const q = this.queue[d];
    if (lat <= 0 && q.length === 0) {
      this.deliver(d, item);
      return;
    }
    const last = q.length ? q[q.length - 1]!.due : 0;
    q.push({ due: Math.max(performance.now() + lat, last), item });
    if (!this.timer[d]) this.pump(d);
  }

  private pump(d: Direction): void {
    this.timer[d] = undefined;
    const q = this.queue[d];
    while (q.length && q[0]!.due <= performance.now()) this.deliver(d, q.shift()!.item);
    if (q.length) this.timer[d] = setTimeout(() => this.pump(d), Math.max(1, q[0]!.due - performance.now()));
  }

  private deliver(d: Direction, item: Item): void {
    const t = this.target(d);
    if (!t || t.destroyed) return;
    if (item === "end") t.end();
    else if (item === "reset") this.reset();
    else {
      this.proxy.count(d, item.length);
      t.write(item);
    }
  }

  private flushHeld(d: Direction): void {
    const items = this.held[d].splice(0);
    for (const it of items) this.send(d, it);
  }

  /** The mode changed: open what is no longer blocked. */
  reopen(): void {
    if (this.gone) return;
    const up = this.proxy.blocks("upstream");
    const down = this.proxy.blocks("downstream");
    if (this.damaged && !up && !down) {
      this.reset();
      return;
    }
    if (!up && !down) this.dial();
    if (!up && this.dialled) this.flushHeld("upstream");
    if (!down) this.flushHeld("downstream");
  }

  reset(): void {
    if (this.gone) return;
    this.proxy.stats.resets++;
    this.gone = true;
    for (const d of ["upstream", "downstream"] as const) if (this.timer[d]) clearTimeout(this.timer[d]);
    rst(this.client);
    if (this.server) rst(this.server);
    this.onGone();
  }

  destroy(): void {
    this.gone = true;
    for (const d of ["upstream", "downstream"] as const) if (this.timer[d]) clearTimeout(this.timer[d]);
    this.client.destroy();
    this.server?.destroy();
    this.onGone();
  }

  private maybeGone(): void {
    if (this.client.destroyed && (!this.server || this.server.destroyed) && !this.held.upstream.length && !this.held.downstream.length) {
      this.gone = true;
      this.onGone();
    }
  }
}

/** RST a socket (SO_LINGER 0); a socket that is not connected yet is just destroyed. */
function rst(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}
