/**
 * workerOnly({ allow }): the guard in front of the worker-facing routes (/v1/assignment,
 * /v1/report and the older worker API). Only the worker beside this agent may speak for
 * it: anyone else could release its streams, report failures for it or register as it.
 *
 * - A caller is allowed when its address is in WORKER_ALLOW (CIDRs; default loopback
 *   127.0.0.1 and ::1 only). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as IPv4.
 * - A request without a socket comes from inside this process (tests, app.request()) and
 *   is allowed; only main.ts listens on a port.
 * - A refusal is a 403 naming the caller and the setting, with `success: false` and
 *   `detail` as well (the shape the older API's clients read).
 * Operator reads and admin routes are not guarded here (admin has its token).
 */
import net from "node:net";
import type { Context, MiddlewareHandler } from "hono";
import { jsonError } from "./errors.js";

export function allowList(cidrs: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const c of cidrs) {
    const [addr = "", bits = ""] = c.split("/");
    list.addSubnet(addr, Number(bits), net.isIP(addr) === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** The caller's address as the server saw it; undefined for an in-process request. */
export function peerAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } }; server?: { incoming?: { socket?: { remoteAddress?: string } } } } | undefined;
  return (env?.server?.incoming ?? env?.incoming)?.socket?.remoteAddress;
}

export function isAllowed(list: net.BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return list.check(mapped[1]!, "ipv4");
  const family = net.isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? "ipv6" : "ipv4");
}

export function workerOnly({ allow }: { allow: readonly string[] }): MiddlewareHandler {
  const list = allowList(allow);
  const setting = allow.join(",");
  return async (c, next) => {
    const peer = peerAddress(c);
    if (peer !== undefined && !isAllowed(list, peer)) {
      const message = `${c.req.method} ${c.req.path} answers only the worker beside this agent; caller ${peer} is not in WORKER_ALLOW=${setting}. Run the worker on the same host (or pod) and call localhost, or add its address to WORKER_ALLOW.`;
      return jsonError(c, 403, message, { success: false, detail: message });
    }
    await next();
  };
}
