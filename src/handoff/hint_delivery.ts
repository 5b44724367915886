/**
 * Handing hints back: a node holding hints checks every round (a few times a second) which of
 * their targets gossip shows up, and streams each such target its hints in acknowledged chunks,
 * paced to `handoff.keysPerSecond`. The target merges a chunk durably, like any replicated write,
 * and acknowledges it; then each hint that did not change meanwhile is dropped. A hint whose
 * target no longer replicates its key (the ring changed, or the target was removed) is first moved
 * to the key's current first replica. Pure over its injected HintStore, Transport and Clock.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import type { Placement } from "../ring/ring_spec.ts";
import { keyPosition } from "../ring/hash_ring.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import type { Version } from "../storage/version_set_format.ts";
import type { HintStore } from "./hint_store.ts";

/** Hints per chunk handed back. */
const CHUNK_KEYS = 128;
/** Rounds: how often a node looks for targets that came back. */
export const handoffRoundMs = 200;
/** A target that has not acknowledged a chunk by then is given up on until the next round. */
const ACK_TIMEOUT_MS = 2_000;

export interface HintDeliveryStats {
  /** Hints handed back and dropped. */
  readonly delivered: number;
  /** Chunks sent, and those not acknowledged (target down again, refused). */
  readonly chunks: number;
  readonly chunksFailed: number;
  /** Hints moved to another target because their target no longer replicates the key. */
  readonly rehomed: number;
}

export interface HintDeliveryOptions {
  readonly self: number;
  readonly hints: HintStore;
  readonly transport: Transport;
  readonly clock: Clock;
  /** Whether gossip shows `node` up. */
  readonly isUp: (node: number) => boolean;
  /** The current ring, and N. */
  readonly placement: () => Placement | undefined;
  readonly keysPerSecond: () => number;
  readonly bytesPerTargetMax: () => number;
  /** Merges versions of a key into this node's own store (a hint whose key this node now replicates). */
  readonly mergeOwn: (key: Uint8Array, versions: readonly Version[]) => Promise<boolean>;
}

export class HintDelivery {
  readonly #options: HintDeliveryOptions;
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;
  #nextChunk = 1;
  readonly #acks = new Map<number, { resolve: (ok: boolean) => void; timer: TimerHandle }>();
  readonly #stats = { delivered: 0, chunks: 0, chunksFailed: 0, rehomed: 0 };

  constructor(options: HintDeliveryOptions) {
    this.#options = options;
    this.#schedule();
  }

  stats(): HintDeliveryStats {
    return { ...this.#stats };
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#options.clock.setTimer(handoffRoundMs, () => {
      if (this.#running) return this.#schedule();
      this.#running = true;
      this.#round()
        .catch(() => {
          // The hint store failed (a disk fault) or is closing: hints stay, the next round retries.
        })
        .finally(() => {
          this.#running = false;
          this.#schedule();
        });
    });
  }

  async #round(): Promise<void> {
    for (const target of this.#options.hints.targets()) {
      if (this.#stopped) return;
      if (target === this.#options.self || this.#options.isUp(target) || !this.#isMember(target)) await this.#deliver(target);
    }
  }

  #isMember(target: number): boolean {
    return this.#options.placement()?.ring.nodes.includes(target) ?? true;
  }

  /** Hands `target` its hints, chunk by chunk; stops at the first chunk not acknowledged. */
  async #deliver(target: number): Promise<void> {
    const { hints, clock } = this.#options;
    const startedMs = clock.nowMs();
    let sent = 0;
    let chunk: { key: Uint8Array; versions: readonly Version[] }[] = [];
    const flush = async (): Promise<boolean> => {
      if (chunk.length === 0) return true;
      const entries = chunk;
      chunk = [];
      const ok = await this.#send(target, entries);
      if (!ok) return false;
      const dropped = await hints.dropManyIfUnchanged(target, entries);
      this.#stats.delivered += dropped;
      sent += entries.length;
      // Pace to keysPerSecond: a returning node also serves clients.
      const waitMs = startedMs + (sent / this.#options.keysPerSecond()) * 1000 - clock.nowMs();
      await new Promise<void>((resolve) => clock.setTimer(Math.max(0, waitMs), resolve));
      return true;
    };
    for (const entry of [...hints.entries(target)]) {
      if (this.#stopped) return;
      const owner = this.#ownerFor(target, entry.key);
      if (owner !== target) {
        await this.#rehome(target, owner, entry.key, entry.versions);
        continue;
      }
      if (target === this.#options.self) {
        if (await this.#options.mergeOwn(entry.key, entry.versions)) {
          if (await hints.dropIfUnchanged(target, entry.key, entry.versions)) this.#stats.delivered++;
        }
        continue;
      }
      chunk.push({ key: entry.key, versions: entry.versions });
      if (chunk.length >= CHUNK_KEYS && !(await flush())) return;
    }
    await flush();
  }

  /** The node a hint for `target` should reach: `target` while it replicates the key, else the key's first replica. */
  #ownerFor(target: number, key: Uint8Array): number {
    const placement = this.#options.placement();
    if (!placement) return target;
    const replicas = placement.ring.preferenceListAt(keyPosition(key), placement.n);
    return replicas.includes(target) ? target : replicas[0]!;
  }

  async #rehome(from: number, to: number, key: Uint8Array, versions: readonly Version[]): Promise<void> {
    const { hints } = this.#options;
    const outcome = await hints.merge(to, key, versions, { bytesPerTargetMax: Number.MAX_SAFE_INTEGER });
    if (outcome !== "stored") return;
    if (await hints.dropIfUnchanged(from, key, versions)) this.#stats.rehomed++;
  }

  /** Sends one chunk; resolves with whether `target` acknowledged it durably. */
  #send(target: number, entries: { key: Uint8Array; versions: readonly Version[] }[]): Promise<boolean> {
    const chunk = this.#nextChunk++;
    this.#stats.chunks++;
    return new Promise<boolean>((resolve) => {
      const timer = this.#options.clock.setTimer(ACK_TIMEOUT_MS, () => {
        this.#acks.delete(chunk);
        this.#stats.chunksFailed++;
        resolve(false);
      });
      this.#acks.set(chunk, {
        resolve: (ok) => {
          if (!ok) this.#stats.chunksFailed++;
          resolve(ok);
        },
        timer,
      });
      this.#options.transport.send(target, { type: MessageType.hint, chunk, entries });
    });
  }

  /** A target answered a chunk. */
  onAck(message: Message): void {
    const waiting = this.#acks.get(message.chunk as number);
    if (!waiting) return;
    this.#acks.delete(message.chunk as number);
    this.#options.clock.clearTimer(waiting.timer);
    waiting.resolve(message.ok === true);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimer(this.#timer);
    for (const waiting of this.#acks.values()) {
      this.#options.clock.clearTimer(waiting.timer);
      waiting.resolve(false);
    }
    this.#acks.clear();
  }
}
