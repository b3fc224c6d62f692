// redlock 5.0.0-beta.2 ships dist/index.d.ts but its package "exports" map has no
// "types" entry, so NodeNext resolution cannot find it (TS7016). This ambient module is
// the subset we use, copied from that file. A tsconfig "paths" mapping would also work
// for tsc but makes tsx load the .d.ts at run time, so we do not use one.
declare module "redlock" {
  import type { EventEmitter } from "node:events";
  import type { Redis } from "ioredis";

  export interface Settings {
    readonly driftFactor: number;
    readonly retryCount: number;
    readonly retryDelay: number;
    readonly retryJitter: number;
    readonly automaticExtensionThreshold: number;
  }
  export class ResourceLockedError extends Error {}
  export class ExecutionError extends Error {
    readonly attempts: ReadonlyArray<Promise<unknown>>;
  }
  export class Lock {
    constructor(redlock: Redlock, resources: string[], value: string, attempts: ReadonlyArray<Promise<unknown>>, expiration: number);
    readonly resources: string[];
    readonly value: string;
    expiration: number;
    release(): Promise<unknown>;
    extend(duration: number): Promise<Lock>;
  }
  export default class Redlock extends EventEmitter {
    constructor(clients: Iterable<Redis>, settings?: Partial<Settings>);
    acquire(resources: string[], duration: number, settings?: Partial<Settings>): Promise<Lock>;
    release(lock: Lock, settings?: Partial<Settings>): Promise<unknown>;
    extend(existing: Lock, duration: number, settings?: Partial<Settings>): Promise<Lock>;
    quit(): Promise<void>;
  }
}
