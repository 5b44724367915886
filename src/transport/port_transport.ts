/**
 * The real transport: messages travel over MessagePorts (node:worker_threads `MessagePort`,
 * `parentPort`, or a `Worker` seen from the main thread — anything with postMessage and
 * on/off('message')). Works on Node and Deno (it never calls `removeAllListeners` or `close` on a
 * port: Deno's parentPort lacks them).
 *
 * Batching rule: every message sent to one peer during one turn of the event loop goes into that
 * peer's outbox; the outboxes are flushed once, at the end of the turn, each as ONE postMessage
 * carrying an array of messages (the wire frame is `Message[]`, never a bare message). The flush
 * runs on a microtask by default (see docs/transport.md for the measurement that chose it). An
 * outbox holds at most `outboxMessagesMax` messages; sends past it are dropped and counted.
 *
 * Thread: one PortTransport per thread, used only from that thread.
 */
import { setImmediate } from "node:timers";
import { assert } from "../util/assert.ts";
import { ClosedError, describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import type { Message } from "./message_types.ts";
import { isPeerNumber, type MessageHandler, type Transport, TransportCounters, type TransportStats } from "./transport.ts";
import { transportLimits } from "./transport_limits.ts";

type PortListener = (value: unknown) => void;

/** The part of a MessagePort (or Worker, or parentPort) the transport uses. */
export interface MessagePortLike {
  postMessage(value: unknown): void;
  on(event: "message", listener: PortListener): unknown;
  off(event: "message", listener: PortListener): unknown;
}

/** When outboxes are flushed: on a microtask (end of the current task) or on setImmediate (after I/O). */
export type FlushTiming = "microtask" | "immediate";

export interface PortTransportOptions {
  /** This endpoint's peer number (a non-negative safe integer). */
  readonly self: number;
  /**
   * When the outboxes are posted. "microtask" posts at the end of the current task (lowest
   * latency); "immediate" waits for the check phase, so replies to several incoming batches of
   * one I/O poll share one postMessage (bigger batches, a little more latency).
   * @default "microtask"
   */
  readonly flush?: FlushTiming;
  /**
   * Messages one peer's outbox holds in one turn; a lower bound caps memory per turn at the cost
   * of dropping bursts. @default transportLimits.outboxMessagesMax (16384), also its upper bound
   */
  readonly outboxMessagesMax?: number;
}

interface Connection {
  readonly peer: number;
  readonly port: MessagePortLike;
  readonly listener: PortListener;
  outbox: Message[];
}

export class PortTransport implements Transport {
  readonly self: number;
  readonly #flushTiming: FlushTiming;
  readonly #outboxMessagesMax: number;
  readonly #connections = new Map<number, Connection>();
  readonly #counters = new TransportCounters();
  /** Connections whose outbox is not empty, in first-send order. */
  #pending: Connection[] = [];
  #flushScheduled = false;
  #handler: MessageHandler | undefined;
  #closed = false;

  constructor(options: PortTransportOptions) {
    if (!isPeerNumber(options.self)) {
      throw new LoomTypeError(`port transport failed: self is ${describe(options.self)}, must be a non-negative safe integer`);
    }
    const flush = options.flush ?? "microtask";
    if (flush !== "microtask" && flush !== "immediate") {
      throw new LoomTypeError(`port transport failed: flush is ${describe(flush)}, must be "microtask" or "immediate"`);
    }
    const outboxMessagesMax = options.outboxMessagesMax ?? transportLimits.outboxMessagesMax;
    if (!Number.isSafeInteger(outboxMessagesMax) || outboxMessagesMax < 1 || outboxMessagesMax > transportLimits.outboxMessagesMax) {
      throw new LoomRangeError(
        `port transport failed: outboxMessagesMax is ${describe(outboxMessagesMax)}, must be an integer in 1..${transportLimits.outboxMessagesMax}`,
      );
    }
    this.self = options.self;
    this.#flushTiming = flush;
    this.#outboxMessagesMax = outboxMessagesMax;
  }

  /**
   * Sends to and receives from `peer` over `port` from now on. The transport listens on the port
   * until `disconnect(peer)` or `close()`; it never closes the port (the caller owns it).
   */
  connect(peer: number, port: MessagePortLike): void {
    if (this.#closed) throw new ClosedError("connect failed: transport is closed");
    if (!isPeerNumber(peer) || peer === this.self) {
      throw new LoomTypeError(`connect failed: peer is ${describe(peer)}, must be a non-negative safe integer other than self`);
    }
    if (this.#connections.has(peer)) throw new LoomRangeError(`connect failed: peer ${peer} is already connected`);
    const listener: PortListener = (value) => this.#receive(peer, value);
    this.#connections.set(peer, { peer, port, listener, outbox: [] });
    port.on("message", listener);
  }

  /** Stops using `peer`'s port; its unsent messages are dropped. No effect for an unknown peer. */
  disconnect(peer: number): void {
    const connection = this.#connections.get(peer);
    if (connection === undefined) return;
    this.#connections.delete(peer);
    connection.port.off("message", connection.listener);
    this.#counters.messagesDroppedNoPeer += connection.outbox.length;
    connection.outbox = [];
  }

  /** Peers currently connected. */
  peers(): number[] {
    return [...this.#connections.keys()];
  }

  send(to: number, message: Message): void {
    if (this.#closed) throw new ClosedError("send failed: transport is closed");
    const connection = this.#connections.get(to);
    if (connection === undefined) {
      this.#counters.messagesDroppedNoPeer += 1;
      return;
    }
    if (connection.outbox.length >= this.#outboxMessagesMax) {
      this.#counters.messagesDroppedOutboxFull += 1;
      return;
    }
    if (connection.outbox.length === 0) this.#pending.push(connection);
    connection.outbox.push(message);
    this.#counters.messagesSent += 1;
    this.#scheduleFlush();
  }

  onMessage(handler: MessageHandler): void {
    this.#handler = handler;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of [...this.#connections.keys()]) this.disconnect(peer);
    this.#pending = [];
    this.#handler = undefined;
  }

  stats(): TransportStats {
    return this.#counters.snapshot();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    if (this.#flushTiming === "microtask") queueMicrotask(this.#flush);
    else setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (const connection of pending) {
      const batch = connection.outbox;
      if (batch.length === 0) continue; // disconnected since the send
      connection.outbox = [];
      connection.port.postMessage(batch);
      this.#counters.batchesSent += 1;
      this.#counters.messagesInBatches += batch.length;
    }
  };

  #receive(from: number, frame: unknown): void {
    if (this.#closed) return;
    assert(Array.isArray(frame), `port transport: peer ${from} sent a frame that is not a message array`);
    if (frame.length === 0) return;
    const handler = this.#handler;
    assert(handler !== undefined, `port transport: a message from peer ${from} arrived before onMessage was called`);
    this.#counters.batchesReceived += 1;
    for (const message of frame as Message[]) {
      this.#counters.messagesReceived += 1;
      handler(from, message);
    }
  }
}
