/**
 * The simulated network: every node's endpoint lives in one thread, and the simulator moves
 * virtual time explicitly with `deliverUntil(nowMs)`. A seeded Prng chooses each message's delay
 * (an integer in [minDelayMs, maxDelayMs]) and whether it is lost, so one seed replays a run
 * exactly. Faults: loss probability, partitions between groups of nodes, node crash and restart.
 *
 * Semantics (the Transport contract, plus):
 * - FIFO per (from, to) pair: a message is never delivered before one sent earlier on its pair
 *   (its delivery time is raised to the pair's last one when the draw would overtake it).
 * - Loss is decided at send time. A partition is checked at delivery time: a message in flight
 *   when a partition starts is dropped; `heal()` affects only messages delivered after it.
 * - `crash(node)` drops every in-flight message to or from the node and detaches its endpoint for
 *   good; `restart(node)` returns a fresh endpoint (the simulator rebuilds the node's state).
 * - A message is copied at send time (copyMessage: what structuredClone would give, made cheaper):
 *   what the receiver sees cannot change.
 * - Handlers run inside `deliverUntil`, with `nowMs()` equal to the delivery time; their sends
 *   are timed from that instant. With minDelayMs 0 two nodes echoing each other never let a
 *   `deliverUntil` return: give such protocols a positive minimum delay.
 *
 * Not thread-safe; pure apart from the injected Prng (no timers, no host clock).
 */
import { assert } from "../util/assert.ts";
import { ClosedError, describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import type { Prng } from "../io/prng.ts";
import type { Message } from "./message_types.ts";
import { isPeerNumber, type MessageHandler, type Transport, TransportCounters, type TransportStats } from "./transport.ts";
import { transportLimits } from "./transport_limits.ts";
import { MinHeap } from "../util/min_heap.ts";
import { copyMessage } from "./message_copy.ts";
import { drawLinkFate, linked, noLinkFaults, type LinkFaults } from "./link_faults.ts";

export interface SimNetworkOptions {
  /** The source of every delay and loss draw; fork it from the simulator's seed. */
  readonly prng: Prng;
  /** Shortest delay of a message, in virtual ms (integer). @default 1 */
  readonly minDelayMs?: number;
  /**
   * Longest delay, in virtual ms (integer, >= minDelayMs). A wider range reorders more across
   * pairs (never within one) and exercises more interleavings. @default 10
   */
  readonly maxDelayMs?: number;
  /** Probability that a sent message is lost. @default 0 */
  readonly lossProbability?: number;
  /** Virtual time at the start, in ms. @default 0 */
  readonly startMs?: number;
}

/** Counters of the whole network (endpoint counters are in each endpoint's `stats()`). */
export interface SimNetworkStats {
  readonly delivered: number;
  readonly lost: number;
  /** Dropped at delivery because sender and receiver were partitioned. */
  readonly droppedPartition: number;
  /** Dropped in flight by a crash or close of the sender or receiver. */
  readonly droppedCrash: number;
  readonly inFlight: number;
}

interface InFlight {
  readonly from: number;
  readonly to: number;
  readonly message: Message;
  readonly deliverAtMs: number;
  /** Global send order: the tie-break for equal delivery times. */
  readonly order: number;
}

function earlier(a: InFlight, b: InFlight): boolean {
  return a.deliverAtMs !== b.deliverAtMs ? a.deliverAtMs < b.deliverAtMs : a.order < b.order;
}

export class SimNetwork {
  readonly #prng: Prng;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #lossProbability: number;
  #nowMs: number;
  #nextOrder = 0;
  /** Binary min-heap by (deliverAtMs, order). */
  #heap = new MinHeap<InFlight>(earlier);
  readonly #endpoints = new Map<number, SimTransport>();
  /** from -> to -> delivery time of the pair's latest message. */
  readonly #pairLastMs = new Map<number, Map<number, number>>();
  /** Unordered pairs that cannot talk, as "low:high". */
  readonly #blocked = new Set<string>();
  /** The cluster's link faults (link_faults.ts), applied between nodes: never to or from `#client`. */
  #linkFaults: LinkFaults = noLinkFaults;
  #client = -1;
  #delivered = 0;
  #lost = 0;
  #droppedPartition = 0;
  #droppedCrash = 0;

  constructor(options: SimNetworkOptions) {
    const minDelayMs = options.minDelayMs ?? 1;
    const maxDelayMs = options.maxDelayMs ?? 10;
    const lossProbability = options.lossProbability ?? 0;
    const startMs = options.startMs ?? 0;
    const delayMax = transportLimits.simDelayMsMax;
    if (!Number.isSafeInteger(minDelayMs) || minDelayMs < 0 || minDelayMs > delayMax) {
      throw new LoomRangeError(`sim network failed: minDelayMs is ${describe(minDelayMs)}, must be an integer in 0..${delayMax}`);
    }
    if (!Number.isSafeInteger(maxDelayMs) || maxDelayMs < minDelayMs || maxDelayMs > delayMax) {
      throw new LoomRangeError(
        `sim network failed: maxDelayMs is ${describe(maxDelayMs)}, must be an integer in ${minDelayMs}..${delayMax} (minDelayMs..limit)`,
      );
    }
    if (!(lossProbability >= 0 && lossProbability <= 1)) {
      throw new LoomRangeError(`sim network failed: lossProbability is ${describe(lossProbability)}, must be in 0..1`);
    }
    if (!Number.isFinite(startMs)) throw new LoomRangeError(`sim network failed: startMs is ${describe(startMs)}, must be finite`);
    this.#prng = options.prng;
    this.#minDelayMs = minDelayMs;
    this.#maxDelayMs = maxDelayMs;
    this.#lossProbability = lossProbability;
    this.#nowMs = startMs;
  }

  /** Virtual time: the last `deliverUntil` bound, or the delivery time of the message being handled. */
  nowMs(): number {
    return this.#nowMs;
  }

  /** The endpoint of a new node. Throws LoomRangeError if `node` already has a live endpoint. */
  endpoint(node: number): SimTransport {
    if (!isPeerNumber(node)) throw new LoomTypeError(`endpoint failed: node is ${describe(node)}, must be a non-negative safe integer`);
    if (this.#endpoints.has(node)) throw new LoomRangeError(`endpoint failed: node ${node} already has a live endpoint`);
    const endpoint = new SimTransport(node, this.#accessFor(node));
    this.#endpoints.set(node, endpoint);
    return endpoint;
  }

  /** Crashes `node`: its endpoint is closed and every message in flight to or from it is dropped. */
  crash(node: number): void {
    this.#endpoints.get(node)?.close();
  }

  /** A fresh endpoint for a crashed (or never started) node. Crashes a live one first. */
  restart(node: number): SimTransport {
    this.crash(node);
    return this.endpoint(node);
  }

  /** Cuts every link between a node of `groupA` and a node of `groupB`, both ways, until `heal()`. */
  partition(groupA: readonly number[], groupB: readonly number[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        if (a !== b) this.#blocked.add(a < b ? `${a}:${b}` : `${b}:${a}`);
      }
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.#blocked.clear();
  }

  /**
   * Applies `faults` (partition groups, drop rate, delay and jitter) to messages between nodes,
   * with the meaning the worker threads give them (link_faults.ts); messages to and from `client`
   * (the main thread) are never touched. Replaces the previous link faults; `partition`/`heal`
   * are independent of them.
   */
  setLinkFaults(faults: LinkFaults, client: number): void {
    this.#linkFaults = faults;
    this.#client = client;
  }

  /** Delivery time of the next message in flight, or undefined if none. */
  nextDeliveryMs(): number | undefined {
    return this.#heap.peek()?.deliverAtMs;
  }

  /**
   * Delivers, in (delivery time, send order), every message due at or before `nowMs`, including
   * those sent by handlers meanwhile; then sets the time to `nowMs`. Returns the number delivered.
   * REQUIRES: `nowMs` >= the current time.
   */
  deliverUntil(nowMs: number): number {
    if (!(Number.isFinite(nowMs) && nowMs >= this.#nowMs)) {
      throw new LoomRangeError(`deliver failed: nowMs is ${describe(nowMs)}, must be finite and >= ${this.#nowMs}`);
    }
    let delivered = 0;
    for (let next = this.#heap.peek(); next !== undefined && next.deliverAtMs <= nowMs; next = this.#heap.peek()) {
      this.#heap.pop();
      this.#nowMs = next.deliverAtMs;
      if (this.#deliver(next)) delivered += 1;
    }
    this.#nowMs = nowMs;
    return delivered;
  }

  /** Delivers until nothing is in flight (time moves to the last delivery). Returns the number delivered. */
  deliverAll(): number {
    let delivered = 0;
    for (let next = this.nextDeliveryMs(); next !== undefined; next = this.nextDeliveryMs()) delivered += this.deliverUntil(next);
    return delivered;
  }

  stats(): SimNetworkStats {
    return {
      delivered: this.#delivered,
      lost: this.#lost,
      droppedPartition: this.#droppedPartition,
      droppedCrash: this.#droppedCrash,
      inFlight: this.#heap.size,
    };
  }

  /** The capabilities an endpoint gets: sending from its node and leaving the network. */
  #accessFor(node: number): EndpointAccess {
    return {
      send: (to, message, counters) => this.#send(node, to, message, counters),
      leave: (endpoint) => this.#leave(node, endpoint),
    };
  }

  #send(from: number, to: number, message: Message, counters: TransportCounters): void {
    if (!this.#endpoints.has(to) || to === from) {
      counters.messagesDroppedNoPeer += 1;
      return;
    }
    if (this.#heap.size >= transportLimits.simInFlightMessagesMax) {
      counters.messagesDroppedOutboxFull += 1;
      return;
    }
    let delayMs = this.#minDelayMs + this.#prng.nextInt(this.#maxDelayMs - this.#minDelayMs + 1);
    let lost = this.#prng.chance(this.#lossProbability);
    if (this.#linkFaults !== noLinkFaults && from !== this.#client && to !== this.#client) {
      if (!linked(this.#linkFaults, from, to)) {
        counters.messagesDroppedNoPeer += 1;
        this.#droppedPartition += 1;
        return;
      }
      const fate = drawLinkFate(this.#linkFaults, this.#prng);
      lost ||= fate.lost;
      delayMs += fate.delayMs;
    }
    counters.messagesSent += 1;
    counters.batchesSent += 1;
    counters.messagesInBatches += 1;
    if (lost) {
      counters.messagesLost += 1;
      this.#lost += 1;
      return;
    }
    let lastByTo = this.#pairLastMs.get(from);
    if (lastByTo === undefined) this.#pairLastMs.set(from, (lastByTo = new Map()));
    const deliverAtMs = Math.max(this.#nowMs + delayMs, lastByTo.get(to) ?? -Infinity);
    lastByTo.set(to, deliverAtMs);
    this.#heap.push({ from, to, message: copyMessage(message), deliverAtMs, order: this.#nextOrder++ });
  }

  #deliver(item: InFlight): boolean {
    const low = Math.min(item.from, item.to);
    const high = Math.max(item.from, item.to);
    const cut = item.from !== this.#client && item.to !== this.#client && !linked(this.#linkFaults, item.from, item.to);
    if (cut || this.#blocked.has(`${low}:${high}`)) {
      this.#droppedPartition += 1;
      return false;
    }
    const endpoint = this.#endpoints.get(item.to);
    assert(endpoint !== undefined, "sim network: a message in flight to a node that left");
    this.#delivered += 1;
    endpoint.receive(item.from, item.message);
    return true;
  }

  #leave(node: number, endpoint: SimTransport): void {
    if (this.#endpoints.get(node) !== endpoint) return;
    this.#endpoints.delete(node);
    this.#droppedCrash += this.#heap.retain((item) => item.from !== node && item.to !== node);
  }


}

interface EndpointAccess {
  send(to: number, message: Message, counters: TransportCounters): void;
  leave(endpoint: SimTransport): void;
}

/** One node's endpoint on a SimNetwork. Obtain it from `SimNetwork.endpoint` or `restart`. */
export class SimTransport implements Transport {
  readonly self: number;
  readonly #network: EndpointAccess;
  readonly #counters = new TransportCounters();
  #handler: MessageHandler | undefined;
  #closed = false;

  /** Internal: use SimNetwork.endpoint(). */
  constructor(self: number, network: EndpointAccess) {
    this.self = self;
    this.#network = network;
  }

  /** Whether the endpoint was closed or its node crashed. */
  get closed(): boolean {
    return this.#closed;
  }

  send(to: number, message: Message): void {
    if (this.#closed) throw new ClosedError(`send failed: node ${this.self}'s endpoint is closed`);
    this.#network.send(to, message, this.#counters);
  }

  onMessage(handler: MessageHandler): void {
    this.#handler = handler;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler = undefined;
    this.#network.leave(this);
  }

  stats(): TransportStats {
    return this.#counters.snapshot();
  }

  /** Internal, for SimNetwork: hands one message to the handler. */
  receive(from: number, message: Message): void {
    const handler = this.#handler;
    assert(handler !== undefined, `sim transport: a message for node ${this.self} arrived before onMessage was called`);
    this.#counters.messagesReceived += 1;
    this.#counters.batchesReceived += 1;
    handler(from, message);
  }
}
