/**
 * The repair step of an exchange (docs/anti-entropy.md), at most one per peer at a time: both sides
 * scan the store for their keys of the differing segments and send each key's item hash
 * (aeHashes), then push the entries whose hash the other side lacks (aeEntries, paced to
 * antiEntropy.keysPerSecond and acknowledged by aeAck once merged); each merges what it receives
 * like a repair. Expired tombstones for a key the receiver holds nothing of, because it purged them
 * or because the sender saw every other replica hold them (or nothing), are not stored again: the
 * sender hears aePurged. A session that hears nothing for sessionIdleMs is dropped. Requires
 * the injected options, the trees (replicas, leaf correction), the tombstone grace, and whether the
 * node stopped. Pure over the injected store, transport and clock.
 */
import type { Clock } from "../io/clock.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { AntiEntropyOptions } from "./anti_entropy_options.ts";
import type { AntiEntropyCounters } from "./anti_entropy_stats.ts";
import { itemHash, segmentOf, type Hash64 } from "./item_hash.ts";
import type { TombstonePurge } from "./tombstone_purge.ts";
import { deletedAtOf } from "./tree_build.ts";
import type { TreeUpkeep } from "./tree_upkeep.ts";

/** Keys pushed per aeEntries message. */
const ENTRIES_PER_MESSAGE = 128;
/** aeEntries messages a push keeps unacknowledged: the receiver's merges set the pace too. */
const ENTRIES_IN_FLIGHT = 4;
/** Item hashes per aeHashes message. */
const HASHES_PER_MESSAGE = 4096;
/** Keys scanned between two yields of a scan. */
const SCAN_YIELD_KEYS = 1024;

/**
 * An exchange that has heard nothing for two rounds (at least a second) is dropped: a message was
 * lost. One whose peer went down or restarted is dropped at the next round.
 */
export function sessionIdleMs(intervalMs: number): number {
  return Math.max(1000, 2 * intervalMs);
}

/**
 * An entry of an aeEntries message. `heldElsewhere`: the entry is tombstones only and the sender
 * saw every replica of the key but the receiver hold them or nothing (TombstonePurge.heldByAllBut).
 */
interface PushedEntry {
  readonly key: Uint8Array;
  readonly versions: readonly Version[];
  readonly heldElsewhere?: true;
}

/** One exchange's repair step with one peer (at most one per peer at a time). */
interface Session {
  readonly peer: number;
  readonly exchange: number;
  readonly initiator: boolean;
  /** The peer's generation when the session started. */
  readonly generation: number;
  readonly segments: ReadonlySet<number>;
  readonly buckets: number;
  /** This side's keys of the segments by item hash, once its scan is done. */
  mine: Map<string, Uint8Array> | null;
  readonly theirs: Set<string>;
  theirsDone: boolean;
  activeMs: number;
  /** Entries messages sent and not yet acknowledged (the receiver merged them), and who waits. */
  unacked: number;
  waiter: (() => void) | undefined;
  /** This side pushed everything and had it acknowledged; the peer said it pushed everything. */
  pushed: boolean;
  peerPushed: boolean;
}

export interface RepairSessionParts {
  readonly options: AntiEntropyOptions;
  readonly stats: AntiEntropyCounters;
  readonly trees: TreeUpkeep;
  readonly tombstones: TombstonePurge;
  /** Whether the node stopped its anti-entropy. */
  readonly stopped: () => boolean;
}

export class RepairSessions {
  readonly #options: AntiEntropyOptions;
  readonly #stats: AntiEntropyCounters;
  readonly #trees: TreeUpkeep;
  readonly #tombstones: TombstonePurge;
  readonly #stopped: () => boolean;
  readonly #sessions = new Map<number, Session>();

  constructor(parts: RepairSessionParts) {
    this.#options = parts.options;
    this.#stats = parts.stats;
    this.#trees = parts.trees;
    this.#tombstones = parts.tombstones;
    this.#stopped = parts.stopped;
  }

  /** How many repair steps are in progress. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The peers of the repair steps in progress. */
  peers(): number[] {
    return [...this.#sessions.keys()];
  }

  clear(): void {
    this.#sessions.clear();
  }

  /** Drops the sessions whose peer went down or restarted, or that heard nothing for sessionIdleMs. */
  dropIdle(nowMs: number): void {
    for (const [peer, session] of this.#sessions) {
      const gone = !this.#options.isUp(peer) || this.#options.generationOf(peer) !== session.generation;
      if (gone || nowMs - session.activeMs > sessionIdleMs(this.#options.config().intervalMs)) this.#sessions.delete(peer);
    }
  }

  /** Responder: the initiator found `segments` different; scan ours and swap hashes. */
  onSegments(from: number, message: Message): void {
    const exchange = message.exchange as number;
    const existing = this.#sessions.get(from);
    // Both sides started an exchange with each other at once: the lower id's goes on.
    if (existing?.initiator === true && this.#options.self > from) this.#sessions.delete(from);
    if (this.#trees.building || this.#trees.buckets !== message.buckets || this.#sessions.size > 0) {
      this.#options.transport.send(from, { type: MessageType.aeHashes, exchange, toInitiator: true, busy: true });
      return;
    }
    this.start(from, exchange, false, message.segments as number[]);
  }

  /** Starts the repair step of `exchange` with `peer` over `segments`: this side's scan begins. */
  start(peer: number, exchange: number, initiator: boolean, segments: readonly number[]): void {
    const session: Session = {
      peer,
      exchange,
      initiator,
      generation: this.#options.generationOf(peer),
      segments: new Set(segments),
      buckets: this.#trees.buckets,
      mine: null,
      theirs: new Set(),
      theirsDone: false,
      activeMs: this.#options.clock.nowMs(),
      unacked: 0,
      waiter: undefined,
      pushed: false,
      peerPushed: false,
    };
    this.#sessions.set(peer, session);
    this.#scan(session).catch(() => this.#end(session));
  }

  /** Ends `session` if it is still the peer's current one. */
  #end(session: Session): void {
    if (this.#sessions.get(session.peer) === session) this.#sessions.delete(session.peer);
  }

  #live(session: Session): boolean {
    return !this.#stopped() && this.#sessions.get(session.peer) === session;
  }

  /** Scans the store for this side's keys of the session's segments and sends their hashes. */
  async #scan(session: Session): Promise<void> {
    const mine = new Map<string, Uint8Array>();
    let chunk = new Uint8Array(HASHES_PER_MESSAGE * 8);
    let count = 0;
    const send = (last: boolean) => {
      const hashes = chunk.slice(0, count * 8);
      this.#stats.bytesSent += hashes.length;
      this.#options.transport.send(session.peer, { type: MessageType.aeHashes, exchange: session.exchange, toInitiator: !session.initiator, hashes, last });
      chunk = new Uint8Array(HASHES_PER_MESSAGE * 8);
      count = 0;
      session.activeMs = this.#options.clock.nowMs();
    };
    let scanned = 0;
    // The leaves of the scanned segments as the snapshot gives them, to check the tree against.
    const leaves = new Map<number, Hash64>();
    const writesBefore = this.#trees.writes;
    for (const entry of this.#options.store.entries()) {
      if (!this.#live(session)) return;
      if (++scanned % SCAN_YIELD_KEYS === 0) {
        session.activeMs = this.#options.clock.nowMs(); // a long scan is not an idle session
        await pause(this.#options.clock, 0);
      }
      const segment = segmentOf(entry.key, session.buckets);
      if (!session.segments.has(segment)) continue;
      if (!this.#trees.peersOf(entry.key).includes(session.peer)) continue;
      const hash = itemHash(entry.key, entry.versions);
      const leaf = leaves.get(segment) ?? { high: 0, low: 0 };
      leaves.set(segment, { high: (leaf.high ^ hash.high) >>> 0, low: (leaf.low ^ hash.low) >>> 0 });
      mine.set(hashId(hash.high, hash.low), entry.key);
      const view = new DataView(chunk.buffer);
      view.setUint32(count * 8, hash.high, true);
      view.setUint32(count * 8 + 4, hash.low, true);
      if (++count === HASHES_PER_MESSAGE) send(false);
    }
    if (!this.#live(session)) return;
    this.#trees.correctLeaves(session, leaves, writesBefore);
    send(true);
    session.mine = mine;
    if (session.theirsDone) this.#push(session).catch(() => this.#end(session));
  }

  onHashes(from: number, message: Message): void {
    const session = this.#sessions.get(from);
    if (!session || session.exchange !== message.exchange || session.initiator !== message.toInitiator) return;
    if (message.busy === true) {
      this.#stats.busy++;
      this.#sessions.delete(from);
      return;
    }
    const hashes = message.hashes as Uint8Array;
    const view = new DataView(hashes.buffer, hashes.byteOffset, hashes.byteLength);
    for (let offset = 0; offset + 8 <= hashes.length; offset += 8) session.theirs.add(hashId(view.getUint32(offset, true), view.getUint32(offset + 4, true)));
    session.activeMs = this.#options.clock.nowMs();
    if (message.last === true) {
      session.theirsDone = true;
      if (session.mine) this.#push(session).catch(() => this.#end(session));
    }
  }

  /**
   * Sends the peer this side's entries whose hash it lacks, paced to keysPerSecond and to the
   * peer's merges (at most ENTRIES_IN_FLIGHT messages unacknowledged); the last message says so.
   * The session ends once both sides pushed everything and had it acknowledged, so neither starts
   * another repair while entries of this one are still on their way.
   */
  async #push(session: Session): Promise<void> {
    const keys: Uint8Array[] = [];
    for (const [id, key] of session.mine!) if (!session.theirs.has(id)) keys.push(key);
    const startedMs = this.#options.clock.nowMs();
    let sent = 0;
    let index = 0;
    do {
      if (!this.#live(session)) return;
      const entries: PushedEntry[] = [];
      for (const key of keys.slice(index, index + ENTRIES_PER_MESSAGE)) {
        const versions = this.#options.store.get(key);
        if (versions.length === 0) continue;
        // A tombstone every other replica holds (or nothing of): the peer, if empty, may decline it.
        if (deletedAtOf(versions) !== undefined && this.#tombstones.heldByAllBut(key, session.peer)) entries.push({ key, versions, heldElsewhere: true });
        else entries.push({ key, versions });
        this.#stats.bytesSent += entryBytes(key, versions);
      }
      index += ENTRIES_PER_MESSAGE;
      const last = index >= keys.length;
      this.#options.transport.send(session.peer, { type: MessageType.aeEntries, exchange: session.exchange, toInitiator: !session.initiator, entries, last });
      session.unacked++;
      this.#stats.keysSent += entries.length;
      sent += entries.length;
      session.activeMs = this.#options.clock.nowMs();
      while (session.unacked >= ENTRIES_IN_FLIGHT && this.#live(session)) await this.#acked(session);
      if (!last) await pause(this.#options.clock, startedMs + (sent / this.#options.config().keysPerSecond) * 1000 - this.#options.clock.nowMs());
    } while (index < keys.length);
    while (session.unacked > 0 && this.#live(session)) await this.#acked(session);
    session.pushed = true;
    if (session.peerPushed) this.#end(session);
  }

  /** Resolves at the session's next acknowledgement, or after sessionIdleMs (the caller re-checks). */
  #acked(session: Session): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#options.clock.setTimer(sessionIdleMs(this.#options.config().intervalMs), () => {
        session.waiter = undefined;
        resolve();
      });
      session.waiter = () => {
        this.#options.clock.clearTimer(timer);
        session.waiter = undefined;
        resolve();
      };
    });
  }

  /** The session (of the role the message names) this message of `from` belongs to, if current. */
  #sessionFor(from: number, message: Message): Session | undefined {
    const session = this.#sessions.get(from);
    if (!session || session.exchange !== message.exchange || session.initiator !== message.toInitiator) return undefined;
    return session;
  }

  onAck(from: number, message: Message): void {
    const session = this.#sessionFor(from, message);
    if (!session) return;
    session.unacked = Math.max(0, session.unacked - 1);
    session.activeMs = this.#options.clock.nowMs();
    session.waiter?.();
  }

  /**
   * Merges a pushed message of entries, then acknowledges it (the pusher paces on that). The last
   * message of the peer's push marks its side of the session done.
   */
  async onEntries(from: number, message: Message): Promise<void> {
    const entries = message.entries as readonly PushedEntry[];
    this.#stats.keysReceived += entries.length;
    if (this.#stopped()) return;
    const absent: Uint8Array[] = [];
    const merging = entries.filter((entry) => {
      // A key this node does not replicate (the sender's ring differs for a moment) is not taken:
      // a copy outside the replica set is one no purge would ever wait for.
      if (this.#trees.peersOf(entry.key).length === 0) return false;
      // Tombstones past their grace for a key this node holds nothing of, because it purged them
      // or because the sender saw every other replica hold them (or nothing): nothing here or
      // elsewhere is left to delete, so they are not stored again; the sender learns it may purge
      // them. Otherwise another replica may still hold the deleted value (this node may be empty
      // because it was wiped, not because it purged): they are stored like any repair.
      const gone =
        deletedAtOf(entry.versions) !== undefined &&
        this.#tombstones.expired(entry.versions) &&
        this.#options.store.get(entry.key).length === 0 &&
        (entry.heldElsewhere === true || this.#tombstones.purgedHere(entry.key, entry.versions));
      if (gone) absent.push(entry.key);
      return !gone;
    });
    if (absent.length > 0) this.#options.transport.send(from, { type: MessageType.aePurged, keys: absent });
    try {
      // Not `+= await`: that reads the counter before the await, and merges run side by side.
      const changed = merging.length > 0 ? await this.#options.merge(merging) : 0;
      this.#stats.keysRepaired += changed;
    } catch {
      // the store refused (a disk fault, closing): the next exchange repairs it again
    }
    this.#options.transport.send(from, { type: MessageType.aeAck, exchange: message.exchange, toInitiator: !message.toInitiator });
    const session = this.#sessionFor(from, message);
    if (!session) return;
    session.activeMs = this.#options.clock.nowMs();
    if (message.last === true) {
      session.peerPushed = true;
      if (session.pushed) this.#end(session);
    }
  }
}

function pause(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(Math.max(0, ms), resolve));
}

function entryBytes(key: Uint8Array, versions: readonly Version[]): number {
  let bytes = key.length;
  for (const version of versions) bytes += version.version.length + (version.value?.length ?? 0);
  return bytes;
}

function hashId(high: number, low: number): string {
  return `${high.toString(36)}.${low.toString(36)}`;
}
