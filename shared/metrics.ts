/**
 * Prometheus metrics: one private registry per agent (several agents may share a
 * process in tests), default process metrics included, with the event-loop delay sampled
 * every EVENT_LOOP_SAMPLE_MS.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The move reasons fingerv7_stream_failovers_total counts. */
export const FAILOVER_REASONS = ["failing", "quarantined", "worker-degraded"] as const;

/**
 * How often the event-loop delay histogram (nodejs_eventloop_lag_{min,max,mean,p50,p90,p99})
 * samples. Each sample is a timer that wakes the event loop, and waking is dear on a virtual
 * machine: a bare node process sampling at prom-client's default, 10 ms, used 0.59 % of a
 * core on the project machine, 0.18 % at 100 ms, 0.07 % at 1 s (as much as without
 * sampling). At 1 s a stall of a second or more always shows (the next sample is late by
 * what is left of it), a shorter one only when it covers a sample; nodejs_eventloop_lag_seconds
 * is measured at each scrape either
 * way, and the leader's own stall watch (leader/stall.ts) does not depend on it.
 */
export const EVENT_LOOP_SAMPLE_MS = 1000;

export class Metrics {
  readonly registry = new Registry();
  readonly streamsServed: Gauge;
  readonly streamsHeld: Gauge;
  readonly clusterStreams: Gauge<"state">;
  readonly moves: Counter<"reason">;
  readonly rebalances: Counter<"reason">;
  readonly elections: Counter;
  readonly epoch: Gauge;
  readonly isLeader: Gauge;
  readonly heartbeats: Counter<"channel" | "result">;
  readonly handoffSeconds: Histogram;
  readonly leaderTickSeconds: Histogram;
  readonly httpRequests: Counter<"route" | "method" | "status">;
  readonly httpSeconds: Histogram<"route">;
  readonly workerReports: Counter;
  readonly workerProcessed: Gauge;
  readonly workerErrors: Gauge;
  readonly mode: Gauge<"mode">;
  readonly leaseRemaining: Gauge;
  readonly clusterMembers: Gauge<"state">;
  readonly adminRequests: Counter<"action" | "result">;
  readonly workerCpu: Gauge;
  readonly workerMemory: Gauge;
  readonly workerLoad: Gauge;
  readonly workerStreamUpdates: Counter<"status">;
  readonly workerIdConflicts: Counter;
  readonly streamsHealth: Gauge<"health">;
  readonly streamFailovers: Counter<"reason">;

  constructor(labels: { instance: string }) {
    const r = this.registry;
    r.setDefaultLabels(labels);
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // prom-client names these gauges *_total, which Prometheus reserves for counters
    // (promtool rejects them); the per-type gauges nodejs_active_{handles,requests,resources} remain.
    for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) r.removeSingleMetric(name);
    this.streamsServed = new Gauge({ name: "fingerv7_streams_served", help: "Streams this agent offers its worker now.", registers: [r] });
    this.streamsHeld = new Gauge({ name: "fingerv7_streams_held", help: "Streams the worker beside this agent may be processing (under an unexpired lease).", registers: [r] });
    this.clusterStreams = new Gauge({ name: "fingerv7_cluster_streams", help: "Cluster-wide stream counts seen by the leader, by state (assigned, unassigned, hashed, total).", labelNames: ["state"], registers: [r] });
    this.moves = new Counter({ name: "fingerv7_moves_total", help: "Stream moves decided by the leader, by reason.", labelNames: ["reason"], registers: [r] });
    this.rebalances = new Counter({ name: "fingerv7_rebalances_total", help: "Rebalances of live members, by trigger.", labelNames: ["reason"], registers: [r] });
    this.elections = new Counter({ name: "fingerv7_leader_elections_total", help: "Times this agent won the leadership lease.", registers: [r] });
    this.epoch = new Gauge({ name: "fingerv7_leader_epoch", help: "Fencing epoch of the current leader as known to this agent.", registers: [r] });
    this.isLeader = new Gauge({ name: "fingerv7_is_leader", help: "1 while this agent leads.", registers: [r] });
    this.heartbeats = new Counter({ name: "fingerv7_heartbeats_total", help: "Heartbeat writes, by liveness channel (redis, postgres) and result (ok, failed).", labelNames: ["channel", "result"], registers: [r] });
    // Known label values start at 0, so rate() and increase() see the first failure.
    for (const channel of ["redis", "postgres"]) for (const result of ["ok", "failed"]) this.heartbeats.inc({ channel, result }, 0);
    this.handoffSeconds = new Histogram({ name: "fingerv7_handoff_duration_seconds", help: "From revoking a stream to its release being confirmed.", buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [r] });
    this.leaderTickSeconds = new Histogram({ name: "fingerv7_leader_tick_duration_seconds", help: "Duration of one leader tick (read, assign, write).", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [r] });
    this.httpRequests = new Counter({ name: "fingerv7_http_requests_total", help: "HTTP requests served.", labelNames: ["route", "method", "status"], registers: [r] });
    this.httpSeconds = new Histogram({ name: "fingerv7_http_request_duration_seconds", help: "HTTP request duration (long-polls included).", labelNames: ["route"], buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30], registers: [r] });
    this.workerReports = new Counter({ name: "fingerv7_worker_reports_total", help: "Reports received from the worker.", registers: [r] });
    this.workerProcessed = new Gauge({ name: "fingerv7_worker_processed", help: "Songs processed as last reported by the worker.", registers: [r] });
    this.workerErrors = new Gauge({ name: "fingerv7_worker_errors", help: "Errors as last reported by the worker.", registers: [r] });
    this.mode = new Gauge({ name: "fingerv7_mode", help: "1 for the mode this agent serves in.", labelNames: ["mode"], registers: [r] });
    this.leaseRemaining = new Gauge({ name: "fingerv7_worker_lease_remaining_seconds", help: "Seconds left on the lease this agent can give its worker.", registers: [r] });
    this.clusterMembers = new Gauge({ name: "fingerv7_cluster_members", help: "Members in this agent's membership view, by state (alive, warning, dead, left).", labelNames: ["state"], registers: [r] });
    this.adminRequests = new Counter({ name: "fingerv7_admin_requests_total", help: "Admin API calls, by action and result (ok, unauthorized, disabled, bad_request, not_found, conflict, error).", labelNames: ["action", "result"], registers: [r] });
    // What a worker of the older API says about itself (its heartbeat and stream updates).
    this.workerCpu = new Gauge({ name: "fingerv7_worker_cpu_percent", help: "CPU use the worker reported in its last heartbeat (older worker API).", registers: [r] });
    this.workerMemory = new Gauge({ name: "fingerv7_worker_memory_percent", help: "Memory use the worker reported in its last heartbeat (older worker API).", registers: [r] });
    this.workerLoad = new Gauge({ name: "fingerv7_worker_current_load", help: "Streams the worker said it was processing in its last heartbeat (older worker API).", registers: [r] });
    this.workerStreamUpdates = new Counter({ name: "fingerv7_worker_stream_updates_total", help: "Stream status updates from the worker (POST /api/streams/update), by status.", labelNames: ["status"], registers: [r] });
    this.workerIdConflicts = new Counter({ name: "fingerv7_worker_id_conflicts_total", help: "Calls refused because they named a worker other than the one this sidecar serves.", registers: [r] });
    this.streamsHealth = new Gauge({ name: "fingerv7_streams_health", help: "Active streams by health (ok, failing, quarantined, unknown), as the leader sees them.", labelNames: ["health"], registers: [r] });
    this.streamFailovers = new Counter({ name: "fingerv7_stream_failovers_total", help: "Failure-driven moves decided by the leader, by reason (failing, quarantined, worker-degraded).", labelNames: ["reason"], registers: [r] });
    // Present from the start (at 0), so rate() and alerts see every series.
    for (const reason of FAILOVER_REASONS) this.streamFailovers.inc({ reason }, 0);
  }
}
