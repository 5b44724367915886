/**
 * The caller-supplied rule that resolves the versions of one key when merge records meet, on
 * reads and in compaction. The cluster layer supplies one that keeps versions not dominated by
 * another (dotted version vectors); the engine only requires the algebra below.
 *
 * Because compaction runs in a pool thread, a rule travels as a reference (module URL plus export
 * name) and each thread imports it. The module must be importable from any thread.
 */
import { equalBytes } from "../util/bytes.ts";
import type { Version } from "./version_set_format.ts";
import { loadReference, type ModuleReference } from "./module_reference.ts";

export interface MergeRule {
  /**
   * Returns the versions to keep from `versions` (newest record's versions first). Must be
   * deterministic, idempotent (merge(merge(x)) = merge(x)) and associative over concatenation
   * (merge(a ++ merge(b)) = merge(a ++ b)), so that compaction may merge any contiguous run of tables.
   */
  merge(versions: readonly Version[]): Version[];
}

export type MergeRuleReference = ModuleReference;

/** Default rule: keep every distinct version blob once (the newest record's copy wins). */
export const keepDistinctVersions: MergeRule = {
  merge(versions) {
    const kept: Version[] = [];
    for (const candidate of versions) {
      if (!kept.some((existing) => equalBytes(existing.version, candidate.version))) kept.push(candidate);
    }
    return kept;
  },
};

export const keepDistinctVersionsReference: MergeRuleReference = {
  moduleUrl: import.meta.url,
  exportName: "keepDistinctVersions",
};

/** Imports the module a reference names (once per thread) and returns the rule it exports. */
export function loadMergeRule(reference: MergeRuleReference): Promise<MergeRule> {
  const isRule = (value: unknown): value is MergeRule => typeof (value as MergeRule | undefined)?.merge === "function";
  return loadReference("load merge rule", reference, isRule, "an object with a merge() method");
}
