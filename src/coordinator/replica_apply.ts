/**
 * The replica side of replication: merge a version set another node sent (a coordinator's
 * post-write set, a read repair, later hints and anti-entropy) into the versions held locally,
 * and enforce the sibling limits before anything is stored.
 *
 * Pure: the caller reads the key's local versions, calls `applyReplicated`, and on `ok` writes
 * `versions` (a merge write, so a write that raced in meanwhile is merged again by the store's
 * merge rule, never overwritten). On refusal it stores nothing and answers the sender with a nack.
 */
import type { Version } from "../storage/version_set_format.ts";
import { assert } from "../util/assert.ts";
import { limits } from "../util/limits.ts";
import { TooManySiblingsError } from "../util/errors.ts";

export { TooManySiblingsError };
import { dominanceMergeRule } from "../version/sibling_merge_rule.ts";

/**
 * Sibling limits (versions a key may hold after a merge, tombstones included). Local for now;
 * they belong in util/limits.ts.
 * - siblingsWarn: past this a merge still succeeds but emits a warning: some client writes blind
 *   or never resolves what it reads.
 * - siblingsMax: past this a write is refused (LOOM_TOO_MANY_SIBLINGS), so that a runaway writer
 *   cannot make every read of the key slower and every record larger without bound. It must stay
 *   below limits.versionsPerRecordMax so that a refused write is refused here, with a clear error,
 *   and never by the storage engine.
 */
export const siblingLimits = {
  siblingsWarn: 16,
  siblingsMax: 64,
} as const;

assert(siblingLimits.siblingsWarn < siblingLimits.siblingsMax, "siblingsWarn must be below siblingsMax");
assert(siblingLimits.siblingsMax <= limits.versionsPerRecordMax, "a key at siblingsMax must fit in one record");

export interface SiblingLimits {
  readonly siblingsWarn: number;
  readonly siblingsMax: number;
}

/** A merge left more than siblingsWarn versions on a key; the write went ahead. */
export interface SiblingWarning {
  readonly kind: "sibling-warning";
  readonly key: Uint8Array;
  readonly siblings: number;
  readonly siblingsWarn: number;
}

/** Plain-data form of a refusal, for respond effects and nack messages. */
export interface TooManySiblingsFailure {
  readonly code: "LOOM_TOO_MANY_SIBLINGS";
  readonly siblings: number;
  readonly siblingsMax: number;
}

export type ApplyResult =
  | { readonly ok: true; readonly versions: Version[]; readonly effects: SiblingWarning[] }
  | { readonly ok: false; readonly error: TooManySiblingsFailure };

/**
 * The versions of `local` and `incoming` that no other version dominates, newest first (the
 * store's dominance merge rule, i.e. `sync`), checked against the sibling limits.
 * Throws LoomRangeError when a blob is not an encoded version clock (a peer's bug or corruption).
 */
export function applyReplicated(options: {
  readonly key: Uint8Array;
  readonly localVersions: readonly Version[];
  readonly incoming: readonly Version[];
  readonly limits?: SiblingLimits;
}): ApplyResult {
  const versions = dominanceMergeRule.merge([...options.localVersions, ...options.incoming]);
  return checkSiblingLimits(options.key, versions, options.limits ?? siblingLimits);
}

/** `versions` as an ApplyResult: refused past siblingsMax, with a warning past siblingsWarn. */
export function checkSiblingLimits(key: Uint8Array, versions: Version[], bounds: SiblingLimits): ApplyResult {
  const siblings = versions.length;
  if (siblings > bounds.siblingsMax) {
    return { ok: false, error: { code: "LOOM_TOO_MANY_SIBLINGS", siblings, siblingsMax: bounds.siblingsMax } };
  }
  const effects: SiblingWarning[] =
    siblings > bounds.siblingsWarn ? [{ kind: "sibling-warning", key, siblings, siblingsWarn: bounds.siblingsWarn }] : [];
  return { ok: true, versions, effects };
}
