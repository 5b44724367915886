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

export interface MergeRule {
  /**
   * Returns the versions to keep from `versions` (newest record's versions first). Must be
   * deterministic, idempotent (merge(merge(x)) = merge(x)) and associative over concatenation
   * (merge(a ++ merge(b)) = merge(a ++ b)), so that compaction may merge any contiguous run of tables.
   */
  merge(versions: readonly Version[]): Version[];
}

export interface MergeRuleReference {
  readonly moduleUrl: string;
  readonly exportName: string;
}

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

const loaded = new Map<string, MergeRule>();

/** Imports the module a reference names (once per thread) and returns the rule it exports. */
export async function loadMergeRule(reference: MergeRuleReference): Promise<MergeRule> {
  const cacheKey = `${reference.moduleUrl}#${reference.exportName}`;
  const cached = loaded.get(cacheKey);
  if (cached) return cached;
  const module = (await import(reference.moduleUrl)) as Record<string, unknown>;
  const rule = module[reference.exportName] as MergeRule | undefined;
  if (!rule || typeof rule.merge !== "function") {
    throw new TypeError(`load merge rule failed: ${cacheKey} does not export an object with a merge() method`);
  }
  loaded.set(cacheKey, rule);
  return rule;
}
