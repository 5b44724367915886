/**
 * Time-ordered size-tiered compaction: tables are kept newest first with disjoint sequence ranges,
 * and only a contiguous run of them may be merged (merging across a skipped table would let an old
 * put supersede a newer merge in the skipped one). Picks the longest run of similar-sized tables.
 */

export interface CompactionPolicy {
  readonly tablesMin: number;
  readonly tablesMax: number;
  /** Largest / smallest file size allowed within one run. */
  readonly sizeRatio: number;
}

/**
 * Returns [start, end) indexes into `sizes` (newest first) of the run to compact, or undefined when
 * no run of at least `tablesMin` similar tables exists. Prefers longer runs, then newer ones.
 */
export function pickCompaction(sizes: readonly number[], policy: CompactionPolicy): [number, number] | undefined {
  let best: [number, number] | undefined;
  for (let start = 0; start < sizes.length; start++) {
    let smallest = sizes[start]!;
    let largest = sizes[start]!;
    let end = start + 1;
    while (end < sizes.length && end - start < policy.tablesMax) {
      const size = sizes[end]!;
      const nextSmallest = Math.min(smallest, size);
      const nextLargest = Math.max(largest, size);
      if (nextLargest > Math.max(1, nextSmallest) * policy.sizeRatio) break;
      smallest = nextSmallest;
      largest = nextLargest;
      end++;
    }
    const length = end - start;
    if (length >= policy.tablesMin && (!best || length > best[1] - best[0])) best = [start, end];
  }
  return best;
}
