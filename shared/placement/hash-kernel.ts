/**
 * The SIMD scan kernel behind Rendezvous.ownerIndexes (./hash.ts): WebAssembly that
 * computes four pair hashes per instruction and reports, per stream, which members score
 * above a cut. PURE: no imports, no I/O; its only state is its own memory, written and read
 * within one synchronous call. Where WebAssembly SIMD is missing, `scanKernel()` is null and
 * the hash uses its plain scan, which gives the same answers.
 *
 * The bytes are KERNEL_WAT (below) assembled by wabt's `wat2wasm` 1.0.32; to change the
 * kernel, edit the text and run `npx tsx bench/check-kernel.ts`, which prints the new bytes.
 *
 * Guarantees: for every input it accepts, the same passers as the plain scan (the unit
 * tests compare them). Does not guarantee: that it exists (null without WebAssembly SIMD)
 * or accepts every cut (the hash falls back), nor does it choose owners: ./hash.ts does.
 */
/** At most this many members above the cut are reported per stream (about 6 on average). */
export const KERNEL_PASSERS = 16;

/** The little of the WebAssembly API this module uses (the DOM typings are not loaded). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

export interface Kernel {
  readonly memory: WasmMemory;
  /** passers(streams, n, members, cuts, m, out, cap): byte offsets and counts, see KERNEL_WAT. */
  readonly passers: (streams: number, n: number, members: number, cuts: number, m: number, out: number, cap: number) => void;
}

let kernel: Kernel | null | undefined;

/** The kernel, compiled once per process (pure code: no imports, its own memory); null if unavailable. */
export function scanKernel(): Kernel | null {
  if (kernel !== undefined) return kernel;
  kernel = null;
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    const bytes = Uint8Array.from(atob(KERNEL_BASE64), (c) => c.charCodeAt(0));
    if (wasm && wasm.validate(bytes)) {
      const exports = new wasm.Instance(new wasm.Module(bytes), {}).exports;
      kernel = { memory: exports.memory as WasmMemory, passers: exports.passers as Kernel["passers"] };
    }
  } catch {
    // No WebAssembly SIMD here: the plain scan gives the same answers, only slower.
  }
  return kernel;
}

/** Whether `ownerIndexes` runs the SIMD kernel on this runtime (for the benchmark's report). */
export function simdKernelAvailable(): boolean {
  return scanKernel() !== null;
}

/** KERNEL_WAT assembled by wabt's wat2wasm (1.0.32). */
export const KERNEL_BASE64 =
  "AGFzbQEAAAABCwFgB39/f39/f38AAwIBAAUDAQABBxQCBm1lbW9yeQIAB3Bhc3NlcnMAAAqOBgGLBgQCfwF7B38EeyAEQXhxIQsgBEF8cSEMAkADQCAHIAFPDQEgACAHQQJ0aigCACEIIAj9ESEJIAUgByAGQQFqbEECdGohDUEAIQ5BACEKAkADQCAKIAtPDQEgCSACIApBAnRq/QAEAP1RIREgCSACIApBAnRq/QAEEP1RIRIgESARQRD9rQH9USERIBIgEkEQ/a0B/VEhEiAR/QxryuuFa8rrhWvK64VryuuF/bUBIREgEv0Ma8rrhWvK64VryuuFa8rrhf21ASESIBEgEUEN/a0B/VEhESASIBJBDf2tAf1RIRIgEf0MNa6ywjWussI1rrLCNa6ywv21ASERIBL9DDWussI1rrLCNa6ywjWussL9tQEhEiARIBFBEP2tAf1RIREgEiASQRD9rQH9USESIBEgAyAKQQJ0av0ABAD9PCETIBIgAyAKQQJ0av0ABBD9PCEUIBMgFP1Q/VMEQCAT/aQBIBT9pAFBBHRyIQ8DQCAOIAZJBEAgDSAOQQJ0aiAKIA9oajYCBAsgDkEBaiEOIA8gD0EBa3EhDyAPDQALCyAKQQhqIQoMAAsLIAogDEkEQCAJIAIgCkECdGr9AAQA/VEhESARIBFBEP2tAf1RIREgEf0Ma8rrhWvK64VryuuFa8rrhf21ASERIBEgEUEN/a0B/VEhESAR/Qw1rrLCNa6ywjWussI1rrLC/bUBIREgESARQRD9rQH9USERIBEgAyAKQQJ0av0ABAD9PP2kASEPAkAgD0UNAANAIA4gBkkEQCANIA5BAnRqIAogD2hqNgIECyAOQQFqIQ4gDyAPQQFrcSEPIA8NAAsLIApBBGohCgsCQANAIAogBE8NASAIIAIgCkECdGooAgBzIRAgECAQQRB2cyEQIBBB65Svr3hsIRAgECAQQQ12cyEQIBBBtdzKlXxsIRAgECAQQRB2cyEQIBAgAyAKQQJ0aigCAEsEQCAOIAZJBEAgDSAOQQJ0aiAKNgIECyAOQQFqIQ4LIApBAWohCgwACwsgDSAONgIAIAdBAWohBwwACwsL";

/**
 * The kernel's source, WebAssembly text. For each stream hash s = streams[k], every member
 * i with fmix32(s XOR members[i]) >u cuts[i] is a passer; out[k·(cap+1)] receives their
 * number and the first `cap` indexes follow. Eight members per step (two SIMD vectors,
 * one branch, passers found by counting trailing zeros of the lane mask), then four,
 * then the last m mod 4 one at a time.
 */
export const KERNEL_WAT = `(module
  (memory (export "memory") 1)

  ;; passers(streams, n, members, cuts, m, out, cap)
  ;;   streams: n stream hashes (u32); members: m member hashes; cuts: m cuts (u32)
  ;;   out: n records of cap + 1 slots: [number of passers, first \`cap\` passer indexes]
  ;; Member i passes for stream s when fmix32(s ^ members[i]) >u cuts[i].
  (func (export "passers")
    (param $streams i32) (param $n i32) (param $members i32) (param $cuts i32)
    (param $m i32) (param $out i32) (param $cap i32)
    (local $k i32) (local $s i32) (local $sv v128) (local $j i32) (local $m8 i32) (local $m4 i32)
    (local $rec i32) (local $count i32) (local $bits i32) (local $h i32)
    (local $x0 v128) (local $x1 v128) (local $p0 v128) (local $p1 v128)
    (local.set $m8 (i32.and (local.get $m) (i32.const -8)))
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (block $done
      (loop $each_stream
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $s (i32.load (i32.add (local.get $streams) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $sv (i32x4.splat (local.get $s)))
        (local.set $rec (i32.add (local.get $out)
          (i32.shl (i32.mul (local.get $k) (i32.add (local.get $cap) (i32.const 1))) (i32.const 2))))
        (local.set $count (i32.const 0))
        (local.set $j (i32.const 0))
        ;; eight members per step: two vectors of four pair hashes, one branch
        (block $done8
          (loop $by8
            (br_if $done8 (i32.ge_u (local.get $j) (local.get $m8)))
            (local.set $x0 (v128.xor (local.get $sv)
              (v128.load (i32.add (local.get $members) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $x1 (v128.xor (local.get $sv)
              (v128.load offset=16 (i32.add (local.get $members) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $x0 (v128.xor (local.get $x0) (i32x4.shr_u (local.get $x0) (i32.const 16))))
            (local.set $x1 (v128.xor (local.get $x1) (i32x4.shr_u (local.get $x1) (i32.const 16))))
            (local.set $x0 (i32x4.mul (local.get $x0) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
            (local.set $x1 (i32x4.mul (local.get $x1) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
            (local.set $x0 (v128.xor (local.get $x0) (i32x4.shr_u (local.get $x0) (i32.const 13))))
            (local.set $x1 (v128.xor (local.get $x1) (i32x4.shr_u (local.get $x1) (i32.const 13))))
            (local.set $x0 (i32x4.mul (local.get $x0) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
            (local.set $x1 (i32x4.mul (local.get $x1) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
            (local.set $x0 (v128.xor (local.get $x0) (i32x4.shr_u (local.get $x0) (i32.const 16))))
            (local.set $x1 (v128.xor (local.get $x1) (i32x4.shr_u (local.get $x1) (i32.const 16))))
            (local.set $p0 (i32x4.gt_u (local.get $x0)
              (v128.load (i32.add (local.get $cuts) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $p1 (i32x4.gt_u (local.get $x1)
              (v128.load offset=16 (i32.add (local.get $cuts) (i32.shl (local.get $j) (i32.const 2))))))
            (if (v128.any_true (v128.or (local.get $p0) (local.get $p1)))
              (then
                (local.set $bits (i32.or (i32x4.bitmask (local.get $p0))
                                         (i32.shl (i32x4.bitmask (local.get $p1)) (i32.const 4))))
                (loop $record8
                  (if (i32.lt_u (local.get $count) (local.get $cap))
                    (then (i32.store offset=4
                      (i32.add (local.get $rec) (i32.shl (local.get $count) (i32.const 2)))
                      (i32.add (local.get $j) (i32.ctz (local.get $bits))))))
                  (local.set $count (i32.add (local.get $count) (i32.const 1)))
                  (local.set $bits (i32.and (local.get $bits) (i32.sub (local.get $bits) (i32.const 1))))
                  (br_if $record8 (local.get $bits)))))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $by8)))
        ;; then four
        (if (i32.lt_u (local.get $j) (local.get $m4))
          (then
            (local.set $x0 (v128.xor (local.get $sv)
              (v128.load (i32.add (local.get $members) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $x0 (v128.xor (local.get $x0) (i32x4.shr_u (local.get $x0) (i32.const 16))))
            (local.set $x0 (i32x4.mul (local.get $x0) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
            (local.set $x0 (v128.xor (local.get $x0) (i32x4.shr_u (local.get $x0) (i32.const 13))))
            (local.set $x0 (i32x4.mul (local.get $x0) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
            (local.set $x0 (v128.xor (local.get $x0) (i32x4.shr_u (local.get $x0) (i32.const 16))))
            (local.set $bits (i32x4.bitmask (i32x4.gt_u (local.get $x0)
              (v128.load (i32.add (local.get $cuts) (i32.shl (local.get $j) (i32.const 2)))))))
            (block $none4
              (br_if $none4 (i32.eqz (local.get $bits)))
              (loop $record4
                (if (i32.lt_u (local.get $count) (local.get $cap))
                  (then (i32.store offset=4
                    (i32.add (local.get $rec) (i32.shl (local.get $count) (i32.const 2)))
                    (i32.add (local.get $j) (i32.ctz (local.get $bits))))))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))
                (local.set $bits (i32.and (local.get $bits) (i32.sub (local.get $bits) (i32.const 1))))
                (br_if $record4 (local.get $bits))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))))
        ;; then the last m mod 4, one at a time
        (block $done1
          (loop $by1
            (br_if $done1 (i32.ge_u (local.get $j) (local.get $m)))
            (local.set $h (i32.xor (local.get $s)
              (i32.load (i32.add (local.get $members) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
            (local.set $h (i32.mul (local.get $h) (i32.const 0x85ebca6b)))
            (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 13))))
            (local.set $h (i32.mul (local.get $h) (i32.const 0xc2b2ae35)))
            (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
            (if (i32.gt_u (local.get $h)
                  (i32.load (i32.add (local.get $cuts) (i32.shl (local.get $j) (i32.const 2)))))
              (then
                (if (i32.lt_u (local.get $count) (local.get $cap))
                  (then (i32.store offset=4
                    (i32.add (local.get $rec) (i32.shl (local.get $count) (i32.const 2)))
                    (local.get $j))))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $by1)))
        (i32.store (local.get $rec) (local.get $count))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $each_stream)))))
`;
