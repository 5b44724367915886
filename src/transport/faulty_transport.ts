/**
 * Link faults on a real transport: a Transport that forwards to another (a node worker's
 * PortTransport) and applies the cluster's LinkFaults to the messages between nodes: it drops
 * what a partition or the drop rate loses (on send, and on receipt for messages that were already
 * on their way when a partition started) and holds back delayed messages on the node's clock,
 * keeping each pair's order. Messages to and from the main thread (`client`) pass untouched.
 *
 * Same meaning as the simulated network's faults (link_faults.ts). Pure apart from the injected
 * Clock and Prng.
 */
import type { Clock } from "../io/clock.ts";
import type { Prng } from "../io/prng.ts";
import type { Message } from "./message_types.ts";
import { drawLinkFate, linked, noLinkFaults, type LinkFaults } from "./link_faults.ts";
import type { MessageHandler, Transport, TransportStats } from "./transport.ts";

export class FaultyTransport implements Transport {
  readonly self: number;
  readonly #inner: Transport;
  readonly #clock: Clock;
  readonly #prng: Prng;
  /** The peer that is never cut off (the main thread). */
  readonly #client: number;
  #faults: LinkFaults = noLinkFaults;
  /** Per destination: when the last delayed message to it leaves (ms on the clock). */
  readonly #lastLeaveMs = new Map<number, number>();
  #lost = 0;
  #dropped = 0;
  #delayed = 0;
  #closed = false;

  constructor(options: { inner: Transport; clock: Clock; prng: Prng; client: number }) {
    this.self = options.inner.self;
    this.#inner = options.inner;
    this.#clock = options.clock;
    this.#prng = options.prng;
    this.#client = options.client;
  }

  get faults(): LinkFaults {
    return this.#faults;
  }

  setFaults(faults: LinkFaults): void {
    this.#faults = faults;
  }

  send(to: number, message: Message): void {
    if (to === this.#client) return this.#inner.send(to, message);
    if (!linked(this.#faults, this.self, to)) {
      this.#dropped++;
      return;
    }
    const fate = drawLinkFate(this.#faults, this.#prng);
    if (fate.lost) {
      this.#lost++;
      return;
    }
    const nowMs = this.#clock.nowMs();
    const queuedUntil = this.#lastLeaveMs.get(to) ?? 0;
    if (fate.delayMs === 0 && queuedUntil <= nowMs) return this.#inner.send(to, message);
    const leaveMs = Math.max(nowMs + fate.delayMs, queuedUntil);
    this.#lastLeaveMs.set(to, leaveMs);
    this.#delayed++;
    this.#clock.setTimer(leaveMs - nowMs, () => {
      if (!this.#closed) this.#inner.send(to, message);
    });
  }

  onMessage(handler: MessageHandler): void {
    this.#inner.onMessage((from, message) => {
      if (from !== this.#client && !linked(this.#faults, from, this.self)) {
        this.#dropped++;
        return;
      }
      handler(from, message);
    });
  }

  close(): void {
    this.#closed = true;
    this.#inner.close();
  }

  stats(): TransportStats & { readonly messagesPartitioned: number; readonly messagesDelayed: number } {
    const inner = this.#inner.stats();
    return { ...inner, messagesLost: inner.messagesLost + this.#lost, messagesPartitioned: this.#dropped, messagesDelayed: this.#delayed };
  }
}
