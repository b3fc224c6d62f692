/**
 * Ordering helpers of the assignor: deterministic sorts of stream positions by numeric
 * keys with an explicit tie-break. PURE. Guarantees: a deterministic order whenever `tie`
 * is a total order. Does not check that keys are non-negative integers, as they must be.
 */

/**
 * `items` ordered by `keys` (non-negative integers, one per item, ascending), equal keys
 * by `tie`. Packs key and position into one double and sorts natively: several times
 * faster than a comparator sort for the large lists a placement from scratch sorts.
 */
export function sortByKey(items: readonly number[], keys: Float64Array, tie: (a: number, b: number) => number): number[] {
  const n = items.length;
  let max = 0;
  for (let x = 0; x < n; x++) if (keys[x]! > max) max = keys[x]!;
  const scale = 2 ** Math.ceil(Math.log2(n + 1));
  if ((max + 1) * scale > Number.MAX_SAFE_INTEGER) {
    const pos = Array.from(items, (_, x) => x).sort((a, b) => keys[a]! - keys[b]! || tie(items[a]!, items[b]!));
    return pos.map((x) => items[x]!);
  }
  const packed = new Float64Array(n);
  for (let x = 0; x < n; x++) packed[x] = keys[x]! * scale + x;
  packed.sort();
  const out = new Array<number>(n);
  for (let x = 0; x < n; x++) out[x] = items[packed[x]! % scale]!;
  for (let a = 0; a < n; ) {
    const k = Math.floor(packed[a]! / scale);
    let b = a + 1;
    while (b < n && Math.floor(packed[b]! / scale) === k) b++;
    if (b - a > 1) out.splice(a, b - a, ...out.slice(a, b).sort(tie));
    a = b;
  }
  return out;
}

/**
 * The `count` items with the smallest keys, in no particular order; among equal keys at
 * the boundary, those first by `tie`. One native sort of the keys, one pass.
 */
export function weakest(items: readonly number[], keys: Float64Array, count: number, tie: (a: number, b: number) => number): number[] {
  if (count <= 0) return [];
  if (count >= items.length) return [...items];
  const bound = keys.slice().sort()[count - 1]!;
  const out: number[] = [];
  const atBound: number[] = [];
  for (let x = 0; x < items.length; x++) {
    if (keys[x]! < bound) out.push(items[x]!);
    else if (keys[x] === bound) atBound.push(items[x]!);
  }
  if (atBound.length > 1) atBound.sort(tie);
  for (let x = 0; out.length < count; x++) out.push(atBound[x]!);
  return out;
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
