/**
 * The storage engine's merge rule for the cluster: a key keeps the versions that no other version
 * dominates (dotted version vectors, see dotted_version_vector.ts). A tombstone is a version like
 * any other: it supersedes what its writer had seen and is superseded the same way.
 *
 * Algebra (what MergeRule requires, property-tested in test/sibling_merge_rule.test.ts):
 * - deterministic, and independent of input order: the output is sorted by a total order on
 *   (clock, value), so merge is commutative as a set and as a list;
 * - idempotent: the output is a set of mutually non-dominated, distinct versions;
 * - associative, merge(a ++ merge(b)) = merge(a ++ b), because domination is transitive over
 *   histories produced by `update`. Pruning weakens this: a pruned past can see a version without
 *   its ancestors, so a grouping that removed the middle version first may keep a superseded
 *   ancestor as a sibling. The difference is only ever such an extra sibling, never a lost write.
 *
 * Loaded by reference in pool threads: import only pure modules here.
 */
import type { MergeRule, MergeRuleReference } from "../storage/merge_rule.ts";
import type { Version } from "../storage/version_set_format.ts";
import { compareBytes } from "../util/bytes.ts";
import { compareNewestFirst, dominates, type DottedVersionVector, keepUndominated } from "./dotted_version_vector.ts";
import { decodeVersion } from "./version_codec.ts";

interface Decoded {
  readonly clock: DottedVersionVector;
  readonly version: Version;
}

/** Total order: newest dot first, then blob bytes, then tombstone before value, then value bytes. */
function compareDecoded(a: Decoded, b: Decoded): number {
  return (
    compareNewestFirst(a.clock, b.clock) ||
    compareBytes(a.version.version, b.version.version) ||
    compareValues(a.version.value, b.version.value)
  );
}

function compareValues(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null || b === null) return (a === null ? 0 : 1) - (b === null ? 0 : 1);
  return compareBytes(a, b);
}

/**
 * Keeps the versions of `versions` (any order) that no other version dominates; exact duplicates
 * (same blob and value) once; newest dot first. Throws LoomRangeError (a RangeError) when a blob is
 * not an encoded version clock. Returned versions are the input objects.
 */
function merge(versions: readonly Version[]): Version[] {
  // One or two versions (a first write, a write over the one version a key holds) are nearly
  // every merge: the same answer as the general case below, without its arrays and closures.
  if (versions.length === 1) {
    decodeVersion(versions[0]!.version); // still refuses a blob that is no clock
    return [versions[0]!];
  }
  if (versions.length === 2) return mergeTwo(versions[0]!, versions[1]!);
  const sorted = versions.map((version) => ({ clock: decodeVersion(version.version), version })).sort(compareDecoded);
  const distinct = sorted.filter((item, index) => index === 0 || compareDecoded(sorted[index - 1]!, item) !== 0);
  return keepUndominated(distinct).map((item) => item.version);
}

function mergeTwo(first: Version, second: Version): Version[] {
  const a: Decoded = { clock: decodeVersion(first.version), version: first };
  const b: Decoded = { clock: decodeVersion(second.version), version: second };
  const order = compareDecoded(a, b);
  if (order === 0) return [first]; // exact duplicates: once (a stable sort keeps the first)
  const [newer, older] = order < 0 ? [a, b] : [b, a];
  if (dominates(newer.clock, older.clock)) return [newer.version];
  if (dominates(older.clock, newer.clock)) return [older.version];
  return [newer.version, older.version];
}

export const dominanceMergeRule: MergeRule = { merge };

export const dominanceMergeRuleReference: MergeRuleReference = {
  moduleUrl: import.meta.url,
  exportName: "dominanceMergeRule",
};
