/**
 * Gossip failure detection (heartbeats, as Dynamo and Cassandra do): each node keeps a table of
 * every member's (generation, heartbeat). Every `intervalMs` a node raises its own heartbeat and
 * sends its table to `fanout` peers drawn from the seeded PRNG (and to its observers: the main
 * thread). A receiver keeps, per member, the entry with the higher (generation, heartbeat), and
 * notes when it last saw it rise. A member whose heartbeat has not risen for `failAfterMs` is
 * marked down; after `cleanupAfterMs` more its entry leaves the table (not the ring: only
 * addNode/removeNode change the ring), and its next heartbeat is treated as new. A member that
 * comes back with a higher generation (every start has a higher one) is up again at once.
 *
 * Why heartbeats and not SWIM probes or a phi-accrual detector: members are worker threads of one
 * process, with a fixed message latency (tens of microseconds) and no lossy network between them;
 * a heartbeat that stops rising is the cleanest signal there is, and with failAfterMs at ten
 * intervals a healthy node would need to miss ten rounds in a row to be suspected. Gossip to a
 * few peers per round spreads a change in O(log n) rounds; the table is at most nodesMax entries.
 *
 * Each entry also carries the member's hint floor: the oldest version timestamp among the hints
 * it holds for others (HINT_FLOOR_NONE when it holds none). Anti-entropy purges a tombstone only
 * when every member is up and no member's floor predates the delete, so no hint anywhere can
 * bring a purged value back. It carries the targets the member holds hints for, so that a read
 * also asks those hints (a write acknowledged by a stand-in is read before it is handed back),
 * and its flags: FLAG_STORE_FAILED says its store failed (a disk fault), and such a member is
 * down for every purpose of the data plane until a later life beats without the flag.
 *
 * Pure: the caller supplies the time and the PRNG, sends what `tick` returns and feeds what
 * arrives to `receive`. One instance per node; the main thread runs a passive one (it raises no
 * heartbeat of its own and sends nothing) to learn membership as events.
 */
import type { Prng } from "../io/prng.ts";
import { assert } from "../util/assert.ts";

export interface GossipConfig {
  /** How often each node gossips its heartbeat table to a random peer. @default 100 */
  readonly intervalMs: number;
  /** A node whose heartbeat has not risen for this long is marked down. @default 1000 */
  readonly failAfterMs: number;
  /** A down node is forgotten (its hints kept) after this long. @default 30000 */
  readonly cleanupAfterMs: number;
}

export type MemberStatus = "up" | "down";

export interface MemberView {
  readonly node: number;
  readonly status: MemberStatus;
  /** Rises on every start of the node (its wall time at start). 0 while never heard of. */
  readonly generation: number;
  readonly heartbeat: number;
  /** When this observer last saw the heartbeat rise, or the status change (its own clock, ms). */
  readonly changedAtMs: number;
  /** True when the member's latest heartbeat said its store failed (status is then "down"). */
  readonly storeFailed: boolean;
}

export interface MembershipEvent {
  readonly node: number;
  readonly status: MemberStatus;
  readonly generation: number;
  /** The observer's clock when it noticed. */
  readonly atMs: number;
  /** Set when the member went down because its store failed (its heartbeat still rises). */
  readonly storeFailed?: true;
}

/**
 * What one gossip message carries, flat, per member: node, generation, heartbeat, hint floor,
 * flags, the count of hint targets, then those targets.
 */
export type GossipTable = readonly number[];

/** Fixed numbers per member in a gossip table, before its hint targets. */
export const GOSSIP_ENTRY_FIELDS = 6;

/** The member's store failed: it serves no data until it restarts. */
export const FLAG_STORE_FAILED = 1;

/** The members a gossip table names, in order. */
export function gossipTableNodes(table: GossipTable): number[] {
  const nodes: number[] = [];
  for (let index = 0; index < table.length; index += GOSSIP_ENTRY_FIELDS + table[index + 5]!) nodes.push(table[index]!);
  return nodes;
}

/** The hint floor of a member that holds no hints. */
export const HINT_FLOOR_NONE = 0;

/** Peers each node sends its table to per round. */
export const gossipFanout = 2;

interface Entry {
  generation: number;
  heartbeat: number;
  /** The hint floor that came with the newest heartbeat; -1 until one did. */
  hintFloor: number;
  /** Flags and hint targets that came with the newest heartbeat. */
  flags: number;
  hintTargets: readonly number[];
  /** Whether its heartbeat rises (the store may still have failed: see `#effective`). */
  status: MemberStatus;
  /** Last rise of the heartbeat (or generation) as this observer saw it. */
  seenAtMs: number;
  /** Last change of status. */
  changedAtMs: number;
  /** False once the entry was forgotten (cleanupAfterMs after going down). */
  known: boolean;
}

export class GossipState {
  /** This node's id, or undefined for a passive observer (the main thread). */
  readonly self: number | undefined;
  #generation: number;
  #heartbeat = 0;
  #hintFloor = HINT_FLOOR_NONE;
  #flags = 0;
  #hintTargets: readonly number[] = [];
  #config: GossipConfig;
  readonly #entries = new Map<number, Entry>();
  #members: number[] = [];
  #lastRoundMs: number;
  /** Members this observer marked down since it started. */
  markedDown = 0;

  constructor(options: { self?: number; generation: number; members: readonly number[]; config: GossipConfig; nowMs: number }) {
    this.self = options.self;
    this.#generation = options.generation;
    this.#config = options.config;
    this.#lastRoundMs = options.nowMs;
    this.setMembers(options.members, options.nowMs);
  }

  get config(): GossipConfig {
    return this.#config;
  }

  /** Takes effect at the next tick: the caller schedules ticks every `intervalMs`. */
  setConfig(config: GossipConfig): void {
    this.#config = config;
  }

  /**
   * The ring's members (only addNode/removeNode change them). New members start up, as if just
   * heard of, so that a node added a moment ago is not suspected before its first heartbeat.
   */
  setMembers(members: readonly number[], nowMs: number): void {
    this.#members = [...members].sort((a, b) => a - b);
    for (const node of this.#members) {
      if (node === this.self || this.#entries.has(node)) continue;
      this.#entries.set(node, { generation: 0, heartbeat: 0, hintFloor: -1, flags: 0, hintTargets: [], status: "up", seenAtMs: nowMs, changedAtMs: nowMs, known: true });
    }
    for (const node of [...this.#entries.keys()]) if (!this.#members.includes(node)) this.#entries.delete(node);
  }

  /**
   * One round, due every `intervalMs`: raises this node's heartbeat, checks every member's age,
   * and says whom to send the table to. `observers` (the main thread) always get it.
   */
  tick(nowMs: number, prng?: Prng): { readonly sendTo: number[]; readonly table: GossipTable; readonly events: MembershipEvent[] } {
    this.#lastRoundMs = nowMs;
    const events = this.#check(nowMs);
    if (this.self === undefined || prng === undefined) return { sendTo: [], table: [], events };
    this.#heartbeat++;
    const peers = this.#members.filter((node) => node !== this.self);
    prng.shuffle(peers);
    return { sendTo: peers.slice(0, gossipFanout), table: this.table(), events };
  }

  /** Merges a table received from a peer; returns the members whose status changed. */
  receive(table: GossipTable, nowMs: number): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    let index = 0;
    while (index < table.length) {
      assert(index + GOSSIP_ENTRY_FIELDS <= table.length, "a gossip table holds whole entries");
      const node = table[index]!;
      const generation = table[index + 1]!;
      const heartbeat = table[index + 2]!;
      const hintFloor = table[index + 3]!;
      const flags = table[index + 4]!;
      const targetCount = table[index + 5]!;
      const targets = table.slice(index + GOSSIP_ENTRY_FIELDS, index + GOSSIP_ENTRY_FIELDS + targetCount);
      assert(targets.length === targetCount, "a gossip entry holds its hint targets");
      index += GOSSIP_ENTRY_FIELDS + targetCount;
      if (node === this.self) continue;
      const entry = this.#entries.get(node);
      if (!entry) continue; // not a member (removed, or not told yet)
      const newer = generation > entry.generation || (generation === entry.generation && heartbeat > entry.heartbeat);
      if (!newer) continue;
      // A down member is up again with a higher generation (it restarted) or a heartbeat that rose
      // again (it was paused or cut off): either way it beats now.
      const before = effectiveStatus(entry);
      entry.generation = generation;
      entry.heartbeat = heartbeat;
      entry.hintFloor = hintFloor;
      entry.flags = flags;
      entry.hintTargets = targets;
      entry.seenAtMs = nowMs;
      entry.known = true;
      if (entry.status === "down") {
        entry.status = "up";
        entry.changedAtMs = nowMs;
      }
      this.#noteChange(node, entry, before, nowMs, events);
    }
    return events;
  }

  /** Pushes an event when `entry`'s effective status is no longer `before`. */
  #noteChange(node: number, entry: Entry, before: MemberStatus, nowMs: number, events: MembershipEvent[]): void {
    const after = effectiveStatus(entry);
    if (after === before) return;
    entry.changedAtMs = nowMs;
    if (after === "down") this.markedDown++;
    events.push({ node, status: after, generation: entry.generation, atMs: nowMs, ...(after === "down" && entry.status === "up" ? { storeFailed: true as const } : {}) });
  }

  /**
   * `node` was just started with `generation` (the observer started it): up at once, as if its
   * first heartbeat had arrived. Returns the event when that changes its status.
   */
  noteStart(node: number, generation: number, nowMs: number): MembershipEvent[] {
    const entry = this.#entries.get(node);
    if (!entry || generation <= entry.generation) return [];
    const before = effectiveStatus(entry);
    Object.assign(entry, { generation, heartbeat: 0, hintFloor: -1, flags: 0, hintTargets: [], status: "up", seenAtMs: nowMs, known: true });
    const events: MembershipEvent[] = [];
    if (before === "down") {
      entry.changedAtMs = nowMs;
      events.push({ node, status: "up", generation, atMs: nowMs });
    }
    return events;
  }

  /**
   * `node`'s thread is known to have ended (its exit was observed): down at once, until a
   * heartbeat of a later life (a higher generation) arrives.
   */
  markExited(node: number, generation: number, nowMs: number): MembershipEvent[] {
    const entry = this.#entries.get(node);
    if (!entry) return [];
    // Only a higher generation brings it back: relayed heartbeats of the ended life must not.
    if (generation >= entry.generation) {
      entry.generation = generation;
      entry.heartbeat = Number.MAX_SAFE_INTEGER;
    }
    const before = effectiveStatus(entry);
    entry.status = "down";
    if (before === "down") return [];
    this.markedDown++;
    entry.changedAtMs = nowMs;
    return [{ node, status: "down", generation: entry.generation, atMs: nowMs }];
  }

  /** Marks down the members silent for failAfterMs; forgets those down for cleanupAfterMs. */
  #check(nowMs: number): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    for (const [node, entry] of this.#entries) {
      if (entry.status === "up" && nowMs - entry.seenAtMs >= this.#config.failAfterMs) {
        const before = effectiveStatus(entry);
        entry.status = "down";
        if (before === "up") {
          this.markedDown++;
          entry.changedAtMs = nowMs;
          events.push({ node, status: "down", generation: entry.generation, atMs: nowMs });
        }
      } else if (entry.status === "down" && entry.known && nowMs - entry.changedAtMs >= this.#config.cleanupAfterMs) {
        // Forgotten: no longer gossiped. Its last (generation, heartbeat) stays, so that a peer
        // still relaying that old entry cannot bring it back; only a newer one does.
        entry.known = false;
      }
    }
    return events;
  }

  /** This node's table: its own entry and every known member's. */
  table(): GossipTable {
    const table: number[] = [];
    if (this.self !== undefined) table.push(this.self, this.#generation, this.#heartbeat, this.#hintFloor, this.#flags, this.#hintTargets.length, ...this.#hintTargets);
    for (const [node, entry] of this.#entries) {
      if (entry.known && entry.generation > 0 && entry.hintFloor >= 0) {
        table.push(node, entry.generation, entry.heartbeat, entry.hintFloor, entry.flags, entry.hintTargets.length, ...entry.hintTargets);
      }
    }
    return table;
  }

  /** Whether `node` beats and its store serves (a member whose store failed is not up). */
  isUp(node: number): boolean {
    if (node === this.self) return (this.#flags & FLAG_STORE_FAILED) === 0;
    const entry = this.#entries.get(node);
    return entry === undefined || effectiveStatus(entry) === "up";
  }

  /**
   * This node's store failed: its next heartbeats say so, and the caller should gossip at once.
   * Returns false when it had already been said.
   */
  setStoreFailed(): boolean {
    if (this.#flags & FLAG_STORE_FAILED) return false;
    this.#flags |= FLAG_STORE_FAILED;
    this.#heartbeat++;
    return true;
  }

  /** Whether `node`'s latest heartbeat said its store failed. */
  storeFailed(node: number): boolean {
    if (node === this.self) return (this.#flags & FLAG_STORE_FAILED) !== 0;
    return ((this.#entries.get(node)?.flags ?? 0) & FLAG_STORE_FAILED) !== 0;
  }

  /**
   * The targets this node holds hints for, sent with its next heartbeats. Returns true when a
   * target was added (the caller may gossip at once: a reader must learn of a hint soon).
   */
  setHintTargets(targets: readonly number[]): boolean {
    const added = targets.some((target) => !this.#hintTargets.includes(target));
    if (added || targets.length !== this.#hintTargets.length) {
      this.#hintTargets = [...targets];
      if (added) this.#heartbeat++;
    }
    return added;
  }

  /**
   * The members other than this node whose latest heartbeat said they hold hints for `target`,
   * whatever their status (a holder that is down still holds them).
   */
  hintHoldersOf(target: number): number[] {
    const holders: number[] = [];
    for (const [node, entry] of this.#entries) if (entry.known && entry.hintTargets.includes(target)) holders.push(node);
    return holders;
  }

  /** This node's hint floor, sent with its next heartbeats. */
  setHintFloor(floorMs: number): void {
    this.#hintFloor = floorMs;
  }

  /**
   * The hint floor of `node` as its latest heartbeat carried it, or -1 when unknown: never heard
   * from in this view, or down (what it holds now is not known).
   */
  hintFloorOf(node: number): number {
    if (node === this.self) return this.#hintFloor;
    const entry = this.#entries.get(node);
    if (!entry || effectiveStatus(entry) !== "up" || entry.generation === 0) return -1;
    return entry.hintFloor;
  }

  /** The generation (life) of `node` this observer last heard of; 0 when none yet. */
  generationOf(node: number): number {
    if (node === this.self) return this.#generation;
    return this.#entries.get(node)?.generation ?? 0;
  }

  /** Members down in this observer's view, ascending. */
  down(): number[] {
    return [...this.#entries].filter(([, entry]) => effectiveStatus(entry) === "down").map(([node]) => node).sort((a, b) => a - b);
  }

  /** How long `node` has been down in this view (0 when up). */
  downForMs(node: number, nowMs: number): number {
    const entry = this.#entries.get(node);
    return entry !== undefined && effectiveStatus(entry) === "down" ? nowMs - entry.changedAtMs : 0;
  }

  view(): MemberView[] {
    const views: MemberView[] = [];
    for (const node of this.#members) {
      if (node === this.self) {
        const storeFailed = (this.#flags & FLAG_STORE_FAILED) !== 0;
        views.push({ node, status: storeFailed ? "down" : "up", generation: this.#generation, heartbeat: this.#heartbeat, changedAtMs: this.#lastRoundMs, storeFailed });
        continue;
      }
      const entry = this.#entries.get(node)!;
      const storeFailed = (entry.flags & FLAG_STORE_FAILED) !== 0;
      views.push({ node, status: effectiveStatus(entry), generation: entry.generation, heartbeat: entry.heartbeat, changedAtMs: entry.changedAtMs, storeFailed });
    }
    return views;
  }
}

/** A member is up when its heartbeat rises and its store has not failed. */
function effectiveStatus(entry: Entry): MemberStatus {
  return entry.status === "up" && (entry.flags & FLAG_STORE_FAILED) === 0 ? "up" : "down";
}
