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
 * bring a purged value back.
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
}

export interface MembershipEvent {
  readonly node: number;
  readonly status: MemberStatus;
  readonly generation: number;
  /** The observer's clock when it noticed. */
  readonly atMs: number;
}

/** What one gossip message carries: flat quadruples (node, generation, heartbeat, hint floor). */
export type GossipTable = readonly number[];

/** Numbers per member in a gossip table. */
export const GOSSIP_ENTRY_FIELDS = 4;

/** The hint floor of a member that holds no hints. */
export const HINT_FLOOR_NONE = 0;

/** Peers each node sends its table to per round. */
export const gossipFanout = 2;

interface Entry {
  generation: number;
  heartbeat: number;
  /** The hint floor that came with the newest heartbeat; -1 until one did. */
  hintFloor: number;
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
      this.#entries.set(node, { generation: 0, heartbeat: 0, hintFloor: -1, status: "up", seenAtMs: nowMs, changedAtMs: nowMs, known: true });
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

  /** Merges a table received from a peer; returns the members that came back up. */
  receive(table: GossipTable, nowMs: number): MembershipEvent[] {
    assert(table.length % GOSSIP_ENTRY_FIELDS === 0, "a gossip table is quadruples");
    const events: MembershipEvent[] = [];
    for (let index = 0; index < table.length; index += GOSSIP_ENTRY_FIELDS) {
      const node = table[index]!;
      const generation = table[index + 1]!;
      const heartbeat = table[index + 2]!;
      const hintFloor = table[index + 3]!;
      if (node === this.self) continue;
      const entry = this.#entries.get(node);
      if (!entry) continue; // not a member (removed, or not told yet)
      const newer = generation > entry.generation || (generation === entry.generation && heartbeat > entry.heartbeat);
      if (!newer) continue;
      // A down member is up again with a higher generation (it restarted) or a heartbeat that rose
      // again (it was paused or cut off): either way it beats now.
      entry.generation = generation;
      entry.heartbeat = heartbeat;
      entry.hintFloor = hintFloor;
      entry.seenAtMs = nowMs;
      entry.known = true;
      if (entry.status === "down") {
        entry.status = "up";
        entry.changedAtMs = nowMs;
        events.push({ node, status: "up", generation, atMs: nowMs });
      }
    }
    return events;
  }

  /**
   * `node` was just started with `generation` (the observer started it): up at once, as if its
   * first heartbeat had arrived. Returns the event when that changes its status.
   */
  noteStart(node: number, generation: number, nowMs: number): MembershipEvent[] {
    const entry = this.#entries.get(node);
    if (!entry || generation <= entry.generation) return [];
    const wasDown = entry.status === "down";
    Object.assign(entry, { generation, heartbeat: 0, hintFloor: -1, status: "up", seenAtMs: nowMs, known: true });
    if (!wasDown) return [];
    entry.changedAtMs = nowMs;
    return [{ node, status: "up", generation, atMs: nowMs }];
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
    if (entry.status === "down") return [];
    this.markedDown++;
    entry.status = "down";
    entry.changedAtMs = nowMs;
    return [{ node, status: "down", generation: entry.generation, atMs: nowMs }];
  }

  /** Marks down the members silent for failAfterMs; forgets those down for cleanupAfterMs. */
  #check(nowMs: number): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    for (const [node, entry] of this.#entries) {
      if (entry.status === "up" && nowMs - entry.seenAtMs >= this.#config.failAfterMs) {
        this.markedDown++;
        entry.status = "down";
        entry.changedAtMs = nowMs;
        events.push({ node, status: "down", generation: entry.generation, atMs: nowMs });
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
    if (this.self !== undefined) table.push(this.self, this.#generation, this.#heartbeat, this.#hintFloor);
    for (const [node, entry] of this.#entries) {
      if (entry.known && entry.generation > 0 && entry.hintFloor >= 0) table.push(node, entry.generation, entry.heartbeat, entry.hintFloor);
    }
    return table;
  }

  isUp(node: number): boolean {
    if (node === this.self) return true;
    return this.#entries.get(node)?.status !== "down";
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
    if (!entry || entry.status !== "up" || entry.generation === 0) return -1;
    return entry.hintFloor;
  }

  /** The generation (life) of `node` this observer last heard of; 0 when none yet. */
  generationOf(node: number): number {
    if (node === this.self) return this.#generation;
    return this.#entries.get(node)?.generation ?? 0;
  }

  /** Members down in this observer's view, ascending. */
  down(): number[] {
    return [...this.#entries].filter(([, entry]) => entry.status === "down").map(([node]) => node).sort((a, b) => a - b);
  }

  /** How long `node` has been down in this view (0 when up). */
  downForMs(node: number, nowMs: number): number {
    const entry = this.#entries.get(node);
    return entry?.status === "down" ? nowMs - entry.changedAtMs : 0;
  }

  view(): MemberView[] {
    const views: MemberView[] = [];
    for (const node of this.#members) {
      if (node === this.self) {
        views.push({ node, status: "up", generation: this.#generation, heartbeat: this.#heartbeat, changedAtMs: this.#lastRoundMs });
        continue;
      }
      const entry = this.#entries.get(node)!;
      views.push({ node, status: entry.status, generation: entry.generation, heartbeat: entry.heartbeat, changedAtMs: entry.changedAtMs });
    }
    return views;
  }
}
