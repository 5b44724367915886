/**
 * One life of a simulated node, between a start and a crash (or stop): the node core sees the
 * shared virtual clock, its network endpoint and its disk only through these gates, so that the
 * simulator can do to it what a thread's death or pause does to a worker:
 *
 * - dead (crash, stop): no timer of this life fires again, nothing it sends leaves, every disk
 *   operation it still attempts fails (a terminated thread writes nothing more);
 * - paused: timers and incoming messages wait, in order, and run when the pause ends (a thread
 *   blocked in Atomics.wait: it keeps its state, then carries on with what queued up).
 *
 * Pure: the gates wrap injected interfaces.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import type { FileSystem } from "../io/file_system.ts";
import { GatedFileSystem } from "../io/gated_file_system.ts";
import type { Message } from "../transport/message_types.ts";
import type { MessageHandler, Transport, TransportStats } from "../transport/transport.ts";
import { IoError } from "../util/errors.ts";

export class NodeIncarnation {
  readonly node: number;
  #dead = false;
  #paused = false;
  /** Work held while paused: timer callbacks and message deliveries, in arrival order. */
  #held: (() => void)[] = [];
  readonly #diedWaiters: (() => void)[] = [];
  readonly #resumeWaiters: (() => void)[] = [];

  constructor(node: number) {
    this.node = node;
  }

  get dead(): boolean {
    return this.#dead;
  }

  get paused(): boolean {
    return this.#paused;
  }

  kill(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#held = [];
    for (const wake of this.#diedWaiters.splice(0)) wake();
    for (const wake of this.#resumeWaiters.splice(0)) wake();
  }

  pause(): void {
    if (!this.#dead) this.#paused = true;
  }

  /** Ends a pause: what was held runs now, in order. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    for (const work of held) if (!this.#dead) work();
    for (const wake of this.#resumeWaiters.splice(0)) wake();
  }

  /** Resolves when this life ends. */
  died(): Promise<void> {
    if (this.#dead) return Promise.resolve();
    return new Promise((resolve) => this.#diedWaiters.push(resolve));
  }

  /** Resolves once the node is not paused (at once if it is not). */
  awake(): Promise<void> {
    if (!this.#paused) return Promise.resolve();
    return new Promise((resolve) => this.#resumeWaiters.push(resolve));
  }

  /** Runs `work` now, later (paused), or never (dead). */
  run(work: () => void): void {
    if (this.#dead) return;
    if (this.#paused) this.#held.push(work);
    else work();
  }

  clock(shared: Clock): Clock {
    return new IncarnationClock(this, shared);
  }

  /** `observe` sees each message as the node handles it (for the run's trace). */
  transport(endpoint: Transport, observe?: (from: number, message: Message) => void): Transport {
    return new IncarnationTransport(this, endpoint, observe);
  }

  /** `disk` as this life sees it: every access fails once the life has ended. */
  fileSystem(disk: FileSystem): FileSystem {
    return new GatedFileSystem(disk, (_operation, path) => {
      if (this.#dead) throw new IoError(`disk access failed: node ${this.node} crashed`, path);
    });
  }
}

class IncarnationClock implements Clock {
  readonly #life: NodeIncarnation;
  readonly #shared: Clock;

  constructor(life: NodeIncarnation, shared: Clock) {
    this.#life = life;
    this.#shared = shared;
  }

  nowMs(): number {
    return this.#shared.nowMs();
  }

  wallMs(): number {
    return this.#shared.wallMs();
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    return this.#shared.setTimer(delayMs, () => this.#life.run(callback));
  }

  clearTimer(handle: TimerHandle): void {
    this.#shared.clearTimer(handle);
  }
}

class IncarnationTransport implements Transport {
  readonly self: number;
  readonly #life: NodeIncarnation;
  readonly #endpoint: Transport;
  readonly #observe: ((from: number, message: Message) => void) | undefined;

  constructor(life: NodeIncarnation, endpoint: Transport, observe: ((from: number, message: Message) => void) | undefined) {
    this.self = endpoint.self;
    this.#life = life;
    this.#endpoint = endpoint;
    this.#observe = observe;
  }

  send(to: number, message: Message): void {
    if (!this.#life.dead) this.#endpoint.send(to, message);
  }

  onMessage(handler: MessageHandler): void {
    this.#endpoint.onMessage((from, message) =>
      this.#life.run(() => {
        this.#observe?.(from, message);
        handler(from, message);
      }),
    );
  }

  close(): void {
    this.#endpoint.close();
  }

  stats(): TransportStats {
    return this.#endpoint.stats();
  }
}
