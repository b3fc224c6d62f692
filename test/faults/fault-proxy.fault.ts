/**
 * The fault proxy itself, against an echo server on loopback (a few seconds): each mode
 * forwards, holds, drops, resets, refuses or moves to another upstream exactly as
 * test/helpers/fault-proxy.ts says.
 */
import net from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FaultProxy } from "../helpers/fault-proxy.js";

interface Echo {
  port: number;
  received: number;
  close(): Promise<void>;
}

async function echoServer(): Promise<Echo> {
  const socks = new Set<net.Socket>();
  const e: Echo = { port: 0, received: 0, close: async () => {} };
  const server = net.createServer((s) => {
    socks.add(s);
    s.on("data", (b) => {
      e.received += b.length;
      s.write(b);
    });
    s.on("error", () => {});
    s.on("close", () => socks.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  e.port = (server.address() as net.AddressInfo).port;
  e.close = () =>
    new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      server.close(() => r());
    });
  return e;
}

/** A client that collects what it reads and how it ended. */
class Client {
  readonly sock: net.Socket;
  data = "";
  error: string | undefined;
  closed = false;
  connected: Promise<void>;
  constructor(port: number) {
    this.sock = net.connect({ port, host: "127.0.0.1" });
    this.connected = new Promise((resolve, reject) => {
      this.sock.once("connect", () => resolve());
      this.sock.once("error", reject);
    });
    this.sock.on("data", (b) => (this.data += b.toString()));
    this.sock.on("error", (err: NodeJS.ErrnoException) => (this.error = err.code ?? err.message));
    this.sock.on("close", () => (this.closed = true));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const t0 = performance.now();
  while (!check()) {
    if (performance.now() - t0 > ms) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("fault proxy (echo server on loopback)", () => {
  let echo: Echo;
  let proxy: FaultProxy;
  const clients: Client[] = [];
  const client = async (): Promise<Client> => {
    const c = new Client(proxy.port);
    clients.push(c);
    await c.connected;
    return c;
  };

  beforeEach(async () => {
    echo = await echoServer();
    proxy = await FaultProxy.start({ upstreamPort: echo.port, name: "echo" });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.sock.destroy();
    await proxy.close();
    await echo.close();
  });

  it("refuses a non-loopback upstream", () => {
    expect(() => new FaultProxy({ upstreamPort: 1, upstreamHost: "10.0.0.1" })).toThrow(/loopback/);
  });

  it("pass forwards both ways", async () => {
    const c = await client();
    c.sock.write("hello");
    await until(() => c.data === "hello");
  });

  it("blackhole keeps the connection, forwards nothing, and delivers in order on heal", async () => {
    const c = await client();
    c.sock.write("a");
    await until(() => c.data === "a");
    await proxy.blackhole();
    c.sock.write("b");
    const fresh = await client(); // accepted, nothing reaches the server
    fresh.sock.write("x");
    await sleep(300);
    expect(c.data).toBe("a");
    expect(fresh.data).toBe("");
    expect(echo.received).toBe(1);
    expect(c.closed || fresh.closed).toBe(false);
    await proxy.pass();
    await until(() => c.data === "ab" && fresh.data === "x");
  });

  it("resetThenBlackhole resets current connections and blackholes new ones", async () => {
    const c = await client();
    c.sock.write("a");
    await until(() => c.data === "a");
    await proxy.resetThenBlackhole();
    await until(() => c.closed);
    expect(c.error).toBe("ECONNRESET");
    const fresh = await client();
    fresh.sock.write("y");
    await sleep(300);
    expect(fresh.data).toBe("");
    await proxy.pass();
    await until(() => fresh.data === "y");
  });

  it("refuse: new connections are refused, current ones reset; heal listens again on the same port", async () => {
    const c = await client();
    const port = proxy.port;
    await proxy.refuse();
    await until(() => c.closed);
    expect(c.error).toBe("ECONNRESET");
    const r = new Client(port);
    await expect(r.connected).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await proxy.pass();
    expect(proxy.port).toBe(port);
    const again = await client();
    again.sock.write("z");
    await until(() => again.data === "z");
  });

  it("oneWayLoss(downstream): requests arrive, replies do not (held, then delivered)", async () => {
    const c = await client();
    await proxy.oneWayLoss("downstream");
    c.sock.write("req");
    await until(() => echo.received === 3);
    await sleep(200);
    expect(c.data).toBe("");
    await proxy.pass();
    await until(() => c.data === "req");
  });

  it("oneWayLoss(upstream) with the drop policy: requests vanish, the connection is RST on heal", async () => {
    const c = await client();
    await proxy.oneWayLoss("upstream", "drop");
    c.sock.write("lost");
    await sleep(200);
    expect(echo.received).toBe(0);
    await proxy.pass();
    await until(() => c.closed);
    expect(c.error).toBe("ECONNRESET");
  });

  it("latency adds about the round-trip time asked for", async () => {
    const c = await client();
    proxy.latency(300);
    const t0 = performance.now();
    c.sock.write("slow");
    await until(() => c.data === "slow");
    const rtt = performance.now() - t0;
    expect(rtt).toBeGreaterThanOrEqual(290);
    expect(rtt).toBeLessThan(1500);
    proxy.latency(0);
  });

  it("retarget resets current connections and sends new ones to the other upstream", async () => {
    const other = await echoServer();
    try {
      const before = await client();
      before.sock.write("a");
      await until(() => before.data === "a");
      proxy.retarget(other.port);
      await until(() => before.closed);
      expect(before.error).toBe("ECONNRESET");
      const after = await client();
      after.sock.write("bc");
      await until(() => after.data === "bc");
      expect(other.received).toBe(2);
      expect(echo.received).toBe(1);
      expect(proxy.describe()).toBe(`pass→:${other.port}`);
    } finally {
      await other.close();
    }
  });
});
