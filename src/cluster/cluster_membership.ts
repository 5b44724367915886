/**
 * Membership and liveness as the main thread sees them: which members are down (their thread
 * exited, or their heartbeat stopped in the main thread's passive gossip view), each node's gossip
 * generation, the nodes paused on purpose (stats skips them), and the `membership` events the
 * cluster reports. The router avoids every node in `unavailable`.
 *
 * Thread contract: one thread (the main thread, or the simulator's). Pure over the injected Clock.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import { GossipState, type GossipConfig, type MembershipEvent, type MemberStatus, type MemberView } from "../membership/gossip.ts";

/** A change of a node's status as the main thread sees it. */
export interface MembershipChange {
  readonly node: number;
  readonly status: MemberStatus;
  readonly generation: number;
  /** The main thread's monotonic clock, ms. */
  readonly atMs: number;
  /**
   * "gossip": its heartbeat stopped (or rose again); "store": its store failed (a disk fault: it
   * serves nothing until it restarts on a healthy disk); "exit": its thread ended; "start": it was started.
   */
  readonly source: "gossip" | "store" | "exit" | "start";
}

export class ClusterMembership {
  readonly #clock: Clock;
  /** Members known to be down: requests route around them, ring changes refuse them. */
  readonly #down = new Set<number>();
  /** The gossip generation each node was last started with. */
  readonly #generations = new Map<number, number>();
  /** The main thread's view: a passive gossip member, fed by every node's table each round. */
  readonly #gossip: GossipState;
  /** Members whose heartbeat stopped in that view: the router sends them nothing. */
  readonly #gossipDown = new Set<number>();
  /** Members whose heartbeat says their store failed: they still answer control calls. */
  readonly #failed = new Set<number>();
  #gossipTimer: TimerHandle | undefined;
  #stopped = false;
  readonly #listeners = new Set<(change: MembershipChange) => void>();
  /** Nodes whose control calls would not answer for a while (paused on purpose): stats skips them. */
  readonly #silent = new Set<number>();
  /** What the router avoids: nodes whose thread ended, or whose heartbeat stopped. */
  readonly unavailable = { has: (node: number) => this.#down.has(node) || this.#gossipDown.has(node) || this.#failed.has(node) };

  constructor(options: { clock: Clock; members: readonly number[]; gossip: GossipConfig }) {
    this.#clock = options.clock;
    this.#gossip = new GossipState({ generation: 0, members: options.members, config: options.gossip, nowMs: options.clock.nowMs() });
    this.#scheduleGossipCheck();
  }

  /** Whether `node`'s thread is known to have ended. */
  isDown(node: number): boolean {
    return this.#down.has(node);
  }

  /** Whether stats() should skip `node` (it is paused and would not answer). */
  isSilent(node: number): boolean {
    return this.#silent.has(node);
  }

  setSilent(node: number, silent: boolean): void {
    if (silent) this.#silent.add(node);
    else this.#silent.delete(node);
  }

  /** Members down for any reason (exited, silent, store failed), ascending. */
  downList(): number[] {
    return [...new Set([...this.#down, ...this.#gossipDown, ...this.#failed])].sort((a, b) => a - b);
  }

  /** Whether `node`'s thread runs and answers (it may be down for data: its store failed). */
  answers(node: number): boolean {
    return !this.#down.has(node) && !this.#gossipDown.has(node) && !this.#silent.has(node);
  }

  generationOf(node: number): number {
    return this.#generations.get(node) ?? 0;
  }

  /** The main thread's gossip table (every member it heard from), for a node that starts. */
  table(): readonly number[] {
    return this.#gossip.table();
  }

  /** A node's gossip table arrived. */
  receiveGossip(table: number[]): void {
    this.#events(this.#gossip.receive(table, this.#clock.nowMs()), "gossip");
  }

  /** Checks every member's heartbeat age once per gossip interval (read at each round). */
  #scheduleGossipCheck(): void {
    this.#gossipTimer = this.#clock.setTimer(this.#gossip.config.intervalMs, () => {
      if (this.#stopped) return;
      this.#events(this.#gossip.tick(this.#clock.nowMs()).events, "gossip");
      this.#scheduleGossipCheck();
    });
  }

  #events(events: readonly MembershipEvent[], source: MembershipChange["source"]): void {
    for (const { storeFailed, ...event } of events) {
      if (source === "gossip") {
        if (event.status === "up") {
          this.#gossipDown.delete(event.node);
          this.#failed.delete(event.node);
        } else if (storeFailed) this.#failed.add(event.node);
        else this.#gossipDown.add(event.node);
      }
      this.#emit({ ...event, source: storeFailed ? "store" : source });
    }
  }

  #emit(change: MembershipChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // a listener's failure is its own: membership goes on
      }
    }
  }

  /** Calls `listener` on every status change; returns the function that stops it. */
  onMembership(listener: (change: MembershipChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Each member's status and generation as the main thread sees them. */
  view(): MemberView[] {
    return this.#gossip.view().map((member) => (this.#down.has(member.node) ? { ...member, status: "down" as const } : member));
  }

  /** `node`'s thread ended: down at once (an event the first time). Returns its generation. */
  markExited(node: number): number {
    const generation = this.generationOf(node);
    if (!this.#down.has(node)) this.#emit({ node, status: "down", generation, atMs: this.#clock.nowMs(), source: "exit" });
    this.#down.add(node);
    this.#gossip.markExited(node, generation, this.#clock.nowMs());
    return generation;
  }

  /** The generation `node`'s next start takes: above its earlier ones, and its start's wall time. */
  nextGeneration(node: number): number {
    const generation = Math.max(this.generationOf(node) + 1, Math.floor(this.#clock.wallMs()));
    this.#generations.set(node, generation);
    return generation;
  }

  /** `node` started with `generation`: up, and routed to again. */
  started(node: number, generation: number): void {
    this.#down.delete(node);
    this.#gossipDown.delete(node);
    this.#failed.delete(node);
    this.#gossip.noteStart(node, generation, this.#clock.nowMs());
    this.#emit({ node, status: "up", generation, atMs: this.#clock.nowMs(), source: "start" });
  }

  /** A node that is no longer a member and was down: forgets it. Returns whether it was down. */
  forgetDown(node: number): boolean {
    return this.#down.delete(node);
  }

  /** The members or gossip settings changed. */
  reconfigure(members: readonly number[], gossip: GossipConfig): void {
    this.#gossip.setConfig(gossip);
    this.#gossip.setMembers(members, this.#clock.nowMs());
    for (const node of [...this.#gossipDown]) if (!members.includes(node)) this.#gossipDown.delete(node);
    for (const node of [...this.#failed]) if (!members.includes(node)) this.#failed.delete(node);
  }

  /** Stops the heartbeat checks. */
  stop(): void {
    this.#stopped = true;
    if (this.#gossipTimer !== undefined) this.#clock.clearTimer(this.#gossipTimer);
  }
}
