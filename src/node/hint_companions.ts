/**
 * The hint holders a read asks beside each primary of its key (docs/handoff.md): a write
 * acknowledged by a stand-in lives in the stand-in's hints until they are handed back, so the
 * answer for a primary counts only with the answers of the nodes holding hints for it, merged in.
 * That keeps "W + R > N reads your writes" true right after a primary comes back.
 *
 * Pure: the coordinator says who holds hints (gossip) and feeds each answer through.
 */
import type { ReadReply } from "../coordinator/get_session.ts";
import type { Targets } from "../handoff/stand_ins.ts";
import type { Version } from "../storage/version_set_format.ts";
import { dominanceMergeRule } from "../version/sibling_merge_rule.ts";

/** The nodes holding hints for a target (the coordinator included), and whether each is up. */
export type HintHolders = (target: number) => readonly { readonly node: number; readonly up: boolean }[];

/**
 * The hints other nodes hold for one primary, read beside the node answering for that primary in a
 * get: its answer counts only once theirs are in, merged, so that a write acknowledged by a
 * stand-in counts for that primary before its hint is handed back.
 */
export interface Companions {
  /** The primary the hints are held for. */
  readonly target: number;
  /** Holders not yet answered. */
  readonly waiting: Set<number>;
  /** Versions they answered with. */
  readonly versions: Version[];
  /** The answer of the node answering for the primary, held until the holders answered. */
  slotReply: ReadReply | undefined;
}

/**
 * For each primary of a read, the nodes other than the one answering for it that hold hints for
 * it (gossip says who) and are up: the answer for that primary counts only with theirs. A holder
 * that is down (or whose store failed) is out of reach and left out: its hints wait for its
 * return, as in Riak, rather than every read of the primary's keys failing meanwhile. Empty, and
 * free, while nobody holds hints.
 */
export function companionsOf(primaries: readonly number[], targets: Targets, hintHolders: HintHolders): Map<number, Companions> {
  const companions = new Map<number, Companions>();
  for (const primary of primaries) {
    const holders = hintHolders(primary);
    if (holders.length === 0) continue;
    let answering: number | undefined;
    for (const [standIn, standsFor] of targets.hints) if (standsFor === primary) answering = standIn;
    if (answering === undefined && targets.list.includes(primary)) answering = primary;
    if (answering === undefined) continue;
    const group: Companions = { target: primary, waiting: new Set(), versions: [], slotReply: undefined };
    for (const holder of holders) {
      // A stand-in for the primary reads its own hints for it already.
      if (holder.node === answering && answering !== primary) continue;
      if (holder.node !== primary && holder.up) group.waiting.add(holder.node);
    }
    if (group.waiting.size > 0) companions.set(answering, group);
  }
  return companions;
}

/**
 * Routes one read answer through the session's hint holders: a holder's answer is kept (a
 * refusal adds nothing); the answer of a node answering for a primary with holders waits for
 * them and is then merged with theirs. Returns what the session should see now, if anything.
 */
export function throughCompanions(companions: ReadonlyMap<number, Companions> | undefined, from: number, reply: ReadReply, hintFor: number | undefined): { from: number; reply: ReadReply } | undefined {
  if (companions === undefined || companions.size === 0) return { from, reply };
  if (hintFor !== undefined) {
    for (const [answering, group] of companions) {
      if (group.target !== hintFor || !group.waiting.delete(from)) continue;
      if (reply.ok) group.versions.push(...reply.versions);
      return group.waiting.size === 0 && group.slotReply ? { from: answering, reply: completed(group, group.slotReply) } : undefined;
    }
  }
  const group = companions.get(from);
  if (group === undefined || group.slotReply !== undefined) return { from, reply };
  group.slotReply = reply;
  return group.waiting.size === 0 ? { from, reply: completed(group, reply) } : undefined;
}

/** The answer for a primary, whole: its own merged with its hint holders' (a refusal stays one). */
function completed(group: Companions, reply: ReadReply): ReadReply {
  if (!reply.ok || group.versions.length === 0) return reply;
  return { ok: true, versions: dominanceMergeRule.merge([...reply.versions, ...group.versions]) };
}
