/**
 * deploy/kubernetes/fingerv7.yaml, checked against the agent's own code (no cluster needed):
 * - every environment variable of the sidecar is a setting shared/config.ts reads and
 *   accepts with the manifest's value, and the whole environment loads;
 * - the probes' paths answer on the agent's HTTP app, the liveness one even with PostgreSQL
 *   and Redis unreachable (a dependency outage must not restart the sidecar);
 * - terminationGracePeriodSeconds outlasts DRAIN_TIMEOUT; secrets come from the Secret via
 *   secretKeyRef and are placeholders; no real host anywhere;
 * - selectors match the pod's labels; the worker reaches its sidecar on localhost:PORT.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { Agent } from "../../agent/agent.js";
import { createApp } from "../../agent/http/app.js";
import { loadConfig } from "../../shared/config.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { clearPrefix, connectTestRedis, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { ROOT } from "./promql.js";

type Json = { [k: string]: any };
const docs = parseAllDocuments(fs.readFileSync(path.join(ROOT, "deploy/kubernetes/fingerv7.yaml"), "utf8"));
const objects = docs.map((d) => d.toJS() as Json);
const byKind = (kind: string) => objects.find((o) => o.kind === kind)!;
const sts = byKind("StatefulSet");
const pod = sts.spec.template;
const container = (name: string) => (pod.spec.containers as Json[]).find((c) => c.name === name)!;
const sidecar = container("sidecar");
const worker = container("fingerv7");
const POD_NAME = "fingerv7-0";

/** A container's environment as the kubelet would give it (envFrom first, env wins). */
function resolveEnv(c: Json): Record<string, string> {
  const configMap = (name: string) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === name)!.data as Record<string, string>;
  const secret = (name: string) => objects.find((o) => o.kind === "Secret" && o.metadata.name === name)!.stringData as Record<string, string>;
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) Object.assign(env, configMap(from.configMapRef.name));
  for (const e of c.env ?? []) {
    const v = e.valueFrom;
    if (v?.configMapKeyRef) env[e.name] = configMap(v.configMapKeyRef.name)[v.configMapKeyRef.key]!;
    else if (v?.secretKeyRef) env[e.name] = secret(v.secretKeyRef.name)[v.secretKeyRef.key]!;
    else if (v?.fieldRef) env[e.name] = v.fieldRef.fieldPath === "metadata.name" ? POD_NAME : `unsupported ${v.fieldRef.fieldPath}`;
    else env[e.name] = String(e.value);
  }
  return env;
}
const sidecarEnv = resolveEnv(sidecar);
const workerEnv = resolveEnv(worker);

/** The names loadConfig reads, recorded through a Proxy (shared/config.ts exports no list). */
function settingsRead(): Set<string> {
  const seen = new Set<string>();
  loadConfig(new Proxy({}, { get: (_t, key) => (typeof key === "string" && seen.add(key), undefined) }));
  return seen;
}

describe("deploy/kubernetes/fingerv7.yaml", () => {
  it("parses into a Secret, a ConfigMap, a headless Service, a two-container StatefulSet and a PodDisruptionBudget", () => {
    expect(docs.flatMap((d) => d.errors)).toEqual([]);
    expect(objects.map((o) => o.kind)).toEqual(["Secret", "ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"]);
    expect(byKind("Service").spec.clusterIP).toBe("None");
    expect(sts.spec.serviceName).toBe(byKind("Service").metadata.name);
    expect(pod.spec.containers.map((c: Json) => c.name)).toEqual(["fingerv7", "sidecar"]);
    for (const c of pod.spec.containers as Json[]) {
      expect(c.resources?.requests?.cpu && c.resources?.requests?.memory, c.name).toBeTruthy();
      expect(c.resources?.limits?.memory, c.name).toBeTruthy();
    }
  });

  it("gives the sidecar only settings the agent reads and accepts, and the whole environment loads", () => {
    const read = settingsRead();
    // loadConfig's own file and the setting readers beside it (shared/config-*.ts).
    const files = fs.readdirSync(path.join(ROOT, "shared")).filter((f) => f === "config.ts" || /^config-.*\.ts$/.test(f));
    const source = files.map((f) => fs.readFileSync(path.join(ROOT, "shared", f), "utf8")).join("\n");
    for (const [name, value] of Object.entries(sidecarEnv)) {
      expect(read.has(name), `${name} is not read by loadConfig`).toBe(true);
      expect(source, `${name} does not appear in shared/config.ts or shared/config-*.ts`).toContain(`"${name}"`);
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).not.toThrow();
    }
    const config = loadConfig(sidecarEnv);
    expect(config.instanceId).toBe(POD_NAME);
    expect(config.port).toBe(8001);
    expect(config.adminToken).toBe(byKind("Secret").stringData["admin-token"]);
    const db = new URL(config.databaseUrl);
    expect([db.hostname, decodeURIComponent(db.password)]).toEqual([sidecarEnv.POSTGRES_HOST, byKind("Secret").stringData["postgres-password"]]);
  });

  it("takes INSTANCE_ID from the pod name (downward API) for both containers, in a StatefulSet", () => {
    for (const c of [sidecar, worker]) {
      expect(c.env.find((e: Json) => e.name === "INSTANCE_ID").valueFrom, c.name).toEqual({ fieldRef: { fieldPath: "metadata.name" } });
    }
    expect(workerEnv.MAX_STREAMS).toBe(sidecarEnv.MAX_STREAMS);
  });

  it("points the worker's ORCHESTRATOR_URL at localhost:PORT of the sidecar, the port its probes use", () => {
    const url = new URL(workerEnv.ORCHESTRATOR_URL!);
    expect(url.hostname).toBe("localhost");
    expect(Number(url.port)).toBe(loadConfig(sidecarEnv).port);
    const named = Object.fromEntries((sidecar.ports as Json[]).map((p) => [p.name, p.containerPort]));
    for (const probe of [sidecar.livenessProbe, sidecar.readinessProbe]) {
      const port = probe.httpGet.port;
      expect(typeof port === "string" ? named[port] : port).toBe(Number(url.port));
    }
  });

  it("lets the sidecar drain before Kubernetes kills it: terminationGracePeriodSeconds > DRAIN_TIMEOUT (+ main.ts's 5 s margin)", () => {
    expect(sidecar.env.some((e: Json) => e.name === "DRAIN_TIMEOUT" && e.value !== undefined), "DRAIN_TIMEOUT set explicitly").toBe(true);
    const drainS = loadConfig(sidecarEnv).drainTimeoutMs / 1000;
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(drainS + 5);
  });

  it("takes every secret from the Secret through secretKeyRef, and the Secret holds placeholders only", () => {
    const secret = byKind("Secret");
    const sensitive = /PASSWORD|TOKEN|SECRET|REDIS_URL|DATABASE_URL/;
    for (const c of pod.spec.containers as Json[]) {
      for (const e of (c.env as Json[]).filter((e) => sensitive.test(e.name))) {
        const ref = e.valueFrom?.secretKeyRef;
        expect(ref, `${c.name}: ${e.name} must come from a secretKeyRef`).toBeDefined();
        expect(ref.name).toBe(secret.metadata.name);
        expect(Object.keys(secret.stringData)).toContain(ref.key);
      }
    }
    expect(Object.keys(byKind("ConfigMap").data).filter((k) => sensitive.test(k))).toEqual([]);
    expect(["ADMIN_TOKEN", "POSTGRES_PASSWORD", "REDIS_URL"].every((n) => n in sidecarEnv)).toBe(true);
    for (const [k, v] of Object.entries(secret.stringData as Record<string, string>)) expect(v, k).toContain("change-me");
  });

  it("names no real host: every URL, POSTGRES_HOST and image registry is localhost or under example.invalid", () => {
    const hosts = [...JSON.stringify(objects).matchAll(/\b[a-z][a-z0-9+.-]*:\/\/(?:[^@/"\s]*@)?([^:/"\s]+)/g)].map((m) => m[1]!);
    hosts.push(sidecarEnv.POSTGRES_HOST!, ...(pod.spec.containers as Json[]).map((c) => String(c.image).split("/")[0]!));
    expect(hosts.length).toBeGreaterThanOrEqual(5);
    for (const h of hosts) expect(h === "localhost" || h.endsWith(".example.invalid"), h).toBe(true);
  });

  it("selects the pod's own labels in the StatefulSet, the Service and the PodDisruptionBudget", () => {
    const labels = pod.metadata.labels as Record<string, string>;
    for (const selector of [sts.spec.selector.matchLabels, byKind("PodDisruptionBudget").spec.selector.matchLabels, byKind("Service").spec.selector]) {
      expect(Object.keys(selector).length).toBeGreaterThan(0);
      expect(labels).toMatchObject(selector);
    }
    expect(byKind("PodDisruptionBudget").spec.maxUnavailable).toBe(1);
  });
});

describe("the sidecar's probe paths on the agent's HTTP app", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  let agent: Agent;
  const prefix = uniqueName("k8s");
  const probes = () => ({ liveness: sidecar.livenessProbe.httpGet.path as string, readiness: sidecar.readinessProbe.httpGet.path as string });

  beforeAll(async () => {
    db = await createTestDatabase("k8s");
    await createCatalog(db.sql, 3);
    agent = newAgent({ id: "k8s-1", databaseUrl: db.url, prefix });
    await agent.start();
  });

  afterAll(async () => {
    await agent?.close();
    const redis = await connectTestRedis();
    await clearPrefix(redis, prefix).finally(() => redis.disconnect());
    await db?.drop();
  });

  it("answer 200 on a healthy agent (never 404)", async () => {
    const app = createApp(agent);
    const { liveness, readiness } = probes();
    for (const p of [liveness, readiness]) expect((await app.request(p)).status, p).not.toBe(404);
    await waitFor(async () => (await app.request(readiness)).status === 200, 45_000, `${readiness} to answer 200`, 200);
    expect((await app.request(liveness)).status).toBe(200);
  });

  it("keep the sidecar alive but unready while PostgreSQL and Redis are unreachable", async () => {
    const down = newAgent({ id: "k8s-down", databaseUrl: "postgres://postgres@127.0.0.1:1/none", redisUrl: "redis://127.0.0.1:1", prefix });
    try {
      const app = createApp(down);
      const { liveness, readiness } = probes();
      expect((await app.request(liveness)).status, liveness).toBe(200);
      expect((await app.request(readiness)).status, readiness).toBe(503);
    } finally {
      await down.close();
    }
  });
});
