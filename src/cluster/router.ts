/**
 * Routing one request: the coordinator is the first replica of the key that is up; the others
 * follow in preference order. While keys move, a write also goes to the replicas of the ring being
 * moved to, and needs W acknowledgements from each ring's replicas (put_session.ts). A request
 * that cannot reach its quorum among the replicas that are up is refused before anything is sent.
 * Pure.
 */

export type Route =
  | {
      readonly ok: true;
      readonly coordinator: number;
      /** N: the replicas the request addresses in the current ring. */
      readonly replicas: number;
      /** Fields the request message carries: the ordered replica list, and quorum groups while moving. */
      readonly fields: Readonly<Record<string, unknown>>;
    }
  | { readonly ok: false; readonly acknowledged: 0; readonly replicas: number; readonly detail: string };

export function routeRequest(request: {
  readonly action: "put" | "delete" | "get";
  /** The key's replicas in the current ring, preference order. */
  readonly preferenceList: readonly number[];
  /** A write's replicas in the ring being moved to, or null. */
  readonly pendingList: readonly number[] | null;
  /** W or R. */
  readonly required: number;
  readonly down: { has(node: number): boolean };
}): Route {
  const { preferenceList, pendingList, required, down } = request;
  const replicas = preferenceList.length;
  const up = preferenceList.filter((node) => !down.has(node));
  const refuse = (group: readonly number[], live: number, needed: number): Route => ({
    ok: false,
    acknowledged: 0,
    replicas,
    detail: `only ${live} of replicas ${group.join(", ")} ${live === 1 ? "is" : "are"} up, ${needed} needed; nothing was sent`,
  });
  if (up.length < required || up.length === 0) return refuse(preferenceList, up.length, required);
  const coordinator = up[0]!;
  const ordered = [coordinator, ...preferenceList.filter((node) => node !== coordinator)];
  const moving = pendingList !== null && !(pendingList.length === preferenceList.length && pendingList.every((node) => preferenceList.includes(node)));
  if (!moving) return { ok: true, coordinator, replicas, fields: { preferenceList: ordered } };
  const pendingUp = pendingList.filter((node) => !down.has(node)).length;
  const pendingNeeded = Math.min(required, pendingList.length);
  if (pendingUp < pendingNeeded) return refuse(pendingList, pendingUp, pendingNeeded);
  for (const node of pendingList) if (!ordered.includes(node)) ordered.push(node);
  return { ok: true, coordinator, replicas, fields: { preferenceList: ordered, quorumGroups: [[...preferenceList], [...pendingList]] } };
}
