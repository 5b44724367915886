/**
 * The ring-change protocol, run by the main thread: changing N, virtual nodes per node or the
 * membership moves keys while reads and writes go on, in phases:
 *
 *   dual-write → drain → stream → switch → cleanup       (or, on a node going down: abandon)
 *
 * (1) dual-write: from now on a write goes to its key's old and new replicas and needs W of each;
 * (2) drain: wait until every request routed before that has finished; (3) stream: every old
 * replica sends the keys whose replica set changes to their new replicas, which merge them
 * durably (key_stream.ts); (4) switch: the new ring takes over and the cluster file is saved;
 * (5) cleanup: nodes drop the keys they no longer replicate. Every write acknowledged before (1)
 * is on W old replicas, all of which stream, and every write after (1) reaches W new replicas, so
 * no acknowledged write is missing from the new ring. A node of either ring going down abandons
 * the change (RingChangeError) and leaves the old ring in force. Changes run one at a time, in
 * call order. See docs/reconfiguration.md.
 *
 * Pure apart from what it is handed: the nodes' control calls, the requests in flight, the Clock.
 */
import type { Clock } from "../io/clock.ts";
import { HashRing } from "../ring/hash_ring.ts";
import type { RingSpec } from "../ring/ring_spec.ts";
import { RingChangeError } from "../util/errors.ts";
import type { CleanupReport, StreamPlan, StreamReport } from "./ring_change_messages.ts";
import { planTransfer } from "./transfer_plan.ts";

/** The control calls of one node a move makes. Each rejects if the node stops before answering. */
export interface RingChangeControl {
  /** Streams the node's share of the keys whose replicas change (key_stream.ts). */
  stream(plan: StreamPlan): Promise<StreamReport>;
  /**
   * Drops the keys the node no longer replicates under `ring`. `freshActor`: the node's actor from
   * now on if it drops a key its actor stamped (NodeCore.cleanup).
   */
  cleanup(ring: RingSpec, keysPerSecond: number, freshActor: number): Promise<CleanupReport>;
  /** Stops the scan of an abandoned stream at its next chunk. */
  abortStream(streamId: number): Promise<void>;
}

/** What the mover asks of the nodes (the cluster's NodeHost gives it). */
export interface RingChangeNodes {
  control(node: number): RingChangeControl;
}

/** The requests in flight, as far as a move waits for them (the cluster's RequestTable). */
export interface RequestsInFlight {
  /** The id the next request will get. */
  readonly nextId: number;
  /** Resolves once every request numbered below `mark` has finished. */
  drain(mark: number): Promise<void>;
}

/** The settings a move reads of the cluster's configuration. */
export interface MovingConfig {
  readonly nodes: number;
  readonly n: number;
  readonly vnodesPerNode: number;
  readonly streamKeysPerSecond: number;
}

/** What one ring change did: reported by `configure()`, `addNode()`, `removeNode()` and in stats. */
export interface RingChangeReport {
  readonly action: string;
  readonly before: RingSpec;
  readonly after: RingSpec;
  /** Keys read by the old replicas while scanning their stores. */
  readonly keysScanned: number;
  /** (key, new replica) pairs streamed: every old replica streams each key it held. */
  readonly keysSent: number;
  /** Key copies the move created: (key, new replica) pairs, each counted once. */
  readonly keysMoved: number;
  /** Of the keys streamed, those their target did not hold on arrival (dual writes may come first). */
  readonly keysNewOnArrival: number;
  readonly chunks: number;
  /** Keys removed afterwards from nodes that no longer replicate them (docs/reconfiguration.md). */
  readonly keysDropped: number;
  readonly durationMs: number;
}

/** The ring being moved to, while keys stream: writes go to both rings' replicas. */
export interface Transition<C extends MovingConfig = MovingConfig> {
  readonly ring: HashRing;
  /**
   * The configuration the move switches to. Settings changed while it runs are applied to it as
   * well as to the current configuration, so the switch keeps them.
   */
  config: C;
  /** Nodes of the old and the new ring: if one goes down, the move is abandoned. */
  readonly involved: ReadonlySet<number>;
  abort(node: number): void;
}

/** Ring change reports kept for stats(). */
const RING_CHANGES_KEPT = 16;

export class RingMover<C extends MovingConfig> {
  readonly #host: RingChangeNodes;
  /** A fresh actor for a node's cleanup (ClusterCore.allocateActor). */
  readonly #freshActor: () => number;
  readonly #clock: Clock;
  readonly #requests: RequestsInFlight;
  readonly #isDown: (node: number) => boolean;
  readonly #switchTo: (config: C, members: readonly number[], ring: HashRing) => void;
  readonly #current: () => { config: C; members: readonly number[]; ring: HashRing };
  readonly #applyChange: (config: C, change: unknown) => C;
  readonly #pendingCleanups: () => readonly number[];
  readonly #cleaned: (node: number) => void;
  #transition: Transition<C> | null = null;
  /** Ring changes and membership changes run one at a time, in call order. */
  #changes: Promise<unknown> = Promise.resolve();
  #nextStreamId = 1;
  readonly #reports: RingChangeReport[] = [];

  constructor(options: {
    freshActor: () => number;
    host: RingChangeNodes;
    clock: Clock;
    requests: RequestsInFlight;
    isDown: (node: number) => boolean;
    /** Makes the new ring current and saves the cluster file. */
    switchTo: (config: C, members: readonly number[], ring: HashRing) => void;
    current: () => { config: C; members: readonly number[]; ring: HashRing };
    /** The configuration after a change of settings that move no keys (validated; throws if refused). */
    applyChange: (config: C, change: unknown) => C;
    /** Members that still owe the cleanup of the last ring change (remembered durably by the cluster). */
    pendingCleanups: () => readonly number[];
    /** `node` finished its cleanup under the current ring: the cluster forgets that it owed one. */
    cleaned: (node: number) => void;
  }) {
    this.#host = options.host;
    this.#freshActor = options.freshActor;
    this.#clock = options.clock;
    this.#requests = options.requests;
    this.#isDown = options.isDown;
    this.#switchTo = options.switchTo;
    this.#current = options.current;
    this.#applyChange = options.applyChange;
    this.#pendingCleanups = options.pendingCleanups;
    this.#cleaned = options.cleaned;
  }

  get transition(): Transition<C> | null {
    return this.#transition;
  }

  reports(): RingChangeReport[] {
    return [...this.#reports];
  }

  /** Whether `node` takes part in the move under way (a node being added is not a member yet). */
  involves(node: number): boolean {
    return this.#transition?.involved.has(node) ?? false;
  }

  nodeDown(node: number): void {
    if (this.#transition?.involved.has(node)) this.#transition.abort(node);
  }

  /** A change of settings that move no keys, made while keys move: the move's target takes it too. */
  applyToTransition(change: unknown): void {
    const transition = this.#transition;
    if (transition) transition.config = this.#applyChange(transition.config, change);
  }

  /** Runs `work` after every change queued before it. */
  serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#changes.then(work);
    this.#changes = result.catch(() => {});
    return result;
  }

  /** Resolves once no change is running or queued. */
  async idle(): Promise<void> {
    let seen: Promise<unknown>;
    do {
      seen = this.#changes;
      await seen;
    } while (seen !== this.#changes);
  }

  /** Moves the cluster to `next` on `members` (the module comment has the phases). */
  async changeRing(action: string, next: C, members: number[]): Promise<RingChangeReport> {
    const startedMs = this.#clock.nowMs();
    const current = this.#current();
    const before: RingSpec = { nodes: [...current.members], vnodesPerNode: current.config.vnodesPerNode, n: current.config.n };
    const after: RingSpec = { nodes: members, vnodesPerNode: next.vnodesPerNode, n: next.n };
    const down = [...new Set([...before.nodes, ...after.nodes])].filter((node) => this.#isDown(node));
    // Removing a node that is down (Riak's force-remove, Cassandra's removenode) streams from the
    // replicas that survive: every acknowledged write is on W of N nodes, so with W >= 2 at least
    // one other holds it, and hints held for the removed node go to the keys' new replicas. Any
    // other change needs every node of both rings: dual writes need W replicas of each.
    const removing = after.nodes.length === before.nodes.length - 1 ? before.nodes.filter((node) => !after.nodes.includes(node)) : [];
    const blocking = down.filter((node) => !removing.includes(node));
    if (blocking.length > 0) {
      throw new RingChangeError(`${action} failed: node ${blocking.join(", ")} is down; restart it first, or remove it with removeNode(${blocking[0]})`);
    }
    await this.#finishCleanups(action, current, next.streamKeysPerSecond, removing);
    const sources = before.nodes.filter((node) => !down.includes(node));
    const ring = HashRing.build({ nodes: members, vnodesPerNode: next.vnodesPerNode });
    // A node of either ring going down abandons the move at once, rather than when the chunks
    // streamed to it time out.
    let abort!: (node: number) => void;
    const aborted = new Promise<never>((_, reject) => {
      abort = (node) => reject(new RingChangeError(`${action} failed: node ${node} went down while keys moved; the old ring stays in force`));
    });
    aborted.catch(() => {});
    const transition: Transition<C> = { ring, config: { ...next, nodes: members.length }, involved: new Set([...sources, ...after.nodes]), abort };
    this.#transition = transition;
    const plan = { streamId: this.#nextStreamId++, before, after, keysPerSecond: next.streamKeysPerSecond };
    let reports: StreamReport[] = [];
    let streaming = false;
    try {
      await Promise.race([this.#requests.drain(this.#requests.nextId), aborted]);
      // Lowering N (or a change that only drops replicas) gives no key a new replica: no scan.
      streaming = planTransfer(current.ring, ring, before.n, after.n).some((transfer) => transfer.targets.length > 0);
      if (streaming) reports = await Promise.race([Promise.all(sources.map((node) => this.#host.control(node).stream(plan))), aborted]);
    } catch (error) {
      // Sources still scanning stop at their next chunk instead of streaming for nothing.
      if (streaming) {
        for (const node of sources) if (!this.#isDown(node)) this.#host.control(node).abortStream(plan.streamId).catch(() => {});
      }
      if (error instanceof RingChangeError) throw error;
      throw new RingChangeError(`${action} failed: ${error instanceof Error ? error.message : String(error)}; the old ring stays in force`);
    } finally {
      this.#transition = null;
    }
    // The move's configuration, with the settings changed while keys moved (W, R, timeouts, ...).
    this.#switchTo(transition.config, members, ring);
    const dropped = await this.#cleanup(after, next.streamKeysPerSecond);
    const sum = (field: keyof StreamReport) => reports.reduce((total, report) => total + (report[field] as number), 0);
    const report: RingChangeReport = {
      action,
      before,
      after,
      keysScanned: sum("keysScanned"),
      keysSent: sum("keysSent"),
      keysMoved: sum("keysMoved"),
      keysNewOnArrival: sum("keysNew"),
      chunks: sum("chunks"),
      keysDropped: dropped,
      durationMs: Math.round(this.#clock.nowMs() - startedMs),
    };
    this.#reports.push(report);
    if (this.#reports.length > RING_CHANGES_KEPT) this.#reports.shift();
    return report;
  }

  /**
   * After a switch: every live node of the new ring drops the keys it no longer replicates (lost
   * ranges, lower N). Runs once the requests routed under the old ring have answered, still inside
   * the serialized change, so no move is in flight. The cluster remembered, in the same save as the
   * switch, that every node owes this cleanup; a node that finishes it is told `cleaned`. One that
   * fails or is down keeps owing it: it finishes it when it starts again, before it serves, and no
   * tombstone is purged meanwhile (its extra copies could come back after a later move). Returns
   * the keys dropped.
   */
  async #cleanup(ring: RingSpec, keysPerSecond: number): Promise<number> {
    await this.#requests.drain(this.#requests.nextId);
    const live = ring.nodes.filter((node) => !this.#isDown(node));
    const dropped = await Promise.all(live.map((node) => this.#cleanupOne(node, ring, keysPerSecond)));
    return dropped.reduce((sum, count) => sum + count, 0);
  }

  /** Runs `node`'s cleanup under `ring`; the keys it dropped, or 0 when it failed (it still owes it). */
  #cleanupOne(node: number, ring: RingSpec, keysPerSecond: number): Promise<number> {
    return this.#host
      .control(node)
      .cleanup(ring, keysPerSecond, this.#freshActor())
      .then(
        (report) => {
          this.#cleaned(node);
          return report.keysDropped;
        },
        () => 0,
      );
  }

  /**
   * Before a move: the nodes still owing the last move's cleanup finish it now; a move that would
   * bring keys back to a node still holding stale copies of them is refused.
   */
  async #finishCleanups(action: string, current: { config: C; members: readonly number[] }, keysPerSecond: number, leaving: readonly number[]): Promise<void> {
    const owing = this.#pendingCleanups().filter((node) => !leaving.includes(node));
    if (owing.length === 0) return;
    const ring: RingSpec = { nodes: [...current.members], vnodesPerNode: current.config.vnodesPerNode, n: current.config.n };
    await Promise.all(owing.filter((node) => !this.#isDown(node)).map((node) => this.#cleanupOne(node, ring, keysPerSecond)));
    const still = this.#pendingCleanups().filter((node) => !leaving.includes(node));
    if (still.length > 0) {
      throw new RingChangeError(`${action} failed: node ${still.join(", ")} has not dropped the keys it lost in the last ring change; restart it on a healthy disk first`);
    }
  }
}
