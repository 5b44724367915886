/**
 * Routing one request. The coordinator is the first of the key's primaries (its N replicas) that
 * is up; with none up, the first healthy node after them on the ring (a fallback), which stands
 * in for a primary. The message names the primaries and the fallbacks, in ring order: the
 * coordinator replaces each primary its own gossip shows down with the next healthy fallback,
 * which keeps the write as a hint (sloppy quorum: docs/handoff.md). W (or R) counts primaries and
 * fallbacks alike; pw (or pr) counts primaries only.
 *
 * While keys move, a write also goes to the replicas of the ring being moved to and needs W of
 * each ring's replicas (put_session.ts); no fallback stands in then. A request that cannot reach
 * its quorum among the nodes that are up is refused before anything is sent. Pure.
 */

export type Route =
  | {
      readonly ok: true;
      readonly coordinator: number;
      /**
       * Coordinators to try in order, the chosen one first: the live primaries, then (unless keys
       * move) the live stand-ins. A retry goes to the next one that is still up.
       */
      readonly candidates: readonly number[];
      /** N: the replicas the request addresses in the current ring. */
      readonly replicas: number;
      /**
       * The replicas in the order the message names them, the coordinator first: the array given
       * when that order is already right (the caller gives arrays it owns), else a fresh one.
       */
      readonly preferenceList: readonly number[];
      /** The stand-ins the message names: the array given, or a fresh one. */
      readonly fallbacks: readonly number[];
      /** While keys move: the old ring's and the new ring's replicas, W needed of each. */
      readonly quorumGroups?: number[][];
    }
  | { readonly ok: false; readonly acknowledged: 0; readonly replicas: number; readonly detail: string };

export function routeRequest(request: {
  readonly action: "put" | "delete" | "get";
  /** The key's replicas in the current ring, preference order. */
  readonly preferenceList: readonly number[];
  /** The nodes after them on the ring, in order: stand-ins for primaries that are down. */
  readonly fallbacks: readonly number[];
  /** A write's replicas in the ring being moved to, or null. */
  readonly pendingList: readonly number[] | null;
  /** W or R. */
  readonly required: number;
  /** pw or pr: answers that must come from primaries (0: none). */
  readonly primariesRequired: number;
  readonly down: { has(node: number): boolean };
}): Route {
  const { preferenceList, fallbacks, pendingList, required, primariesRequired, down } = request;
  const replicas = preferenceList.length;
  // The common case first, with no array but the ones the message keeps: every primary up, no keys
  // moving. The coordinator is the first primary, so the list is already in message order.
  if (pendingList === null && required <= replicas && primariesRequired <= replicas && noneDown(preferenceList, down)) {
    const candidates = preferenceList.slice();
    for (const node of fallbacks) if (!down.has(node)) candidates.push(node);
    return { ok: true, coordinator: preferenceList[0]!, candidates, replicas, preferenceList, fallbacks };
  }
  const up = preferenceList.filter((node) => !down.has(node));
  const moving = pendingList !== null && !(pendingList.length === preferenceList.length && pendingList.every((node) => preferenceList.includes(node)));
  const standIns = moving ? [] : fallbacks.filter((node) => !down.has(node));
  const refuse = (detail: string): Route => ({ ok: false, acknowledged: 0, replicas, detail: `${detail}; nothing was sent` });
  const reachable = up.length + Math.min(standIns.length, replicas - up.length);
  if (reachable < required) {
    const stand = standIns.length > 0 ? ` and ${Math.min(standIns.length, replicas - up.length)} stand-in${standIns.length === 1 ? "" : "s"}` : "";
    return refuse(`only ${up.length} of replicas ${preferenceList.join(", ")} ${up.length === 1 ? "is" : "are"} up${stand}, ${required} needed`);
  }
  if (up.length < primariesRequired) {
    return refuse(`only ${up.length} of primaries ${preferenceList.join(", ")} ${up.length === 1 ? "is" : "are"} up, ${primariesRequired} required from primaries`);
  }
  const coordinator = up[0] ?? standIns[0]!;
  const ordered = up.length > 0 ? [coordinator, ...preferenceList.filter((node) => node !== coordinator)] : [...preferenceList];
  const candidates = [...up, ...standIns];
  if (!moving) return { ok: true, coordinator, candidates, replicas, preferenceList: ordered, fallbacks: [...fallbacks] };
  const pendingUp = pendingList.filter((node) => !down.has(node)).length;
  const pendingNeeded = Math.min(required, pendingList.length);
  if (pendingUp < pendingNeeded) return refuse(`only ${pendingUp} of replicas ${pendingList.join(", ")} ${pendingUp === 1 ? "is" : "are"} up, ${pendingNeeded} needed`);
  for (const node of pendingList) if (!ordered.includes(node)) ordered.push(node);
  return { ok: true, coordinator, candidates: up, replicas, preferenceList: ordered, fallbacks: [...fallbacks], quorumGroups: [[...preferenceList], [...pendingList]] };
}

function noneDown(nodes: readonly number[], down: { has(node: number): boolean }): boolean {
  for (const node of nodes) if (down.has(node)) return false;
  return true;
}
