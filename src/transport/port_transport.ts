/**
 * The real transport: messages travel over MessagePorts (node:worker_threads `MessagePort`,
 * `parentPort`, or a `Worker` seen from the main thread — anything with postMessage and
 * on/off('message')). Works on Node and Deno (it never calls `removeAllListeners` or `close` on a
 * port: Deno's parentPort lacks them).
 *
 * Batching rule: every message sent to one peer during one turn of the event loop goes into that
 * peer's outbox; the outboxes are flushed once, at the end of the turn, each as ONE postMessage
 * (more only past `transportLimits.frameBytesTarget`). The flush runs on a microtask by default
 * (see docs/transport.md for the measurement that chose it). An outbox holds at most
 * `outboxMessagesMax` messages; sends past it are dropped and counted.
 *
 * Wire: with `wire: "binary"` (the default) a batch is encoded into one ArrayBuffer
 * (frame_format.ts), posted as bytes (transferred from `frameTransferBytesMin` up), not as an
 * object graph; messages without a binary codec ride along by
 * structured clone in the same postMessage, in their place. With `wire: "clone"` the batch is
 * posted as a structured-clone `Message[]`. A receiver accepts both. A malformed frame is dropped
 * whole and counted in `framesMalformed`; it never throws out of the port listener.
 *
 * Thread: one PortTransport per thread, used only from that thread.
 */
import { performance } from "node:perf_hooks";
import { setImmediate } from "node:timers";
import { assert } from "../util/assert.ts";
import { ClosedError, describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { decodeFrame, type FrameCarrier, FrameEncoder, MalformedFrameError } from "./frame_format.ts";
import { isMessage, type Message } from "./message_types.ts";
import { isPeerNumber, type MessageHandler, type Transport, TransportCounters, type TransportStats } from "./transport.ts";
import { transportLimits } from "./transport_limits.ts";

type PortListener = (value: unknown) => void;

/**
 * Frames from this size up are transferred rather than copied. Measured on Node 20 (3-node
 * cluster, docs/transport.md): transferring every frame cost ~10 us more per single get (4 posts)
 * than copying and gave no throughput gain; copying a large frame twice (post and receipt) is
 * what a transfer saves, so big frames still move.
 */
const frameTransferBytesMin = 64 * 1024;

/** The part of a MessagePort (or Worker, or parentPort) the transport uses. */
export interface MessagePortLike {
  postMessage(value: unknown, transferList?: ArrayBuffer[]): void;
  on(event: "message", listener: PortListener): unknown;
  off(event: "message", listener: PortListener): unknown;
}

/** How a batch travels: one binary frame (clone fallback inside), or a cloned `Message[]`. */
export type WireFormat = "binary" | "clone";

/**
 * When outboxes are flushed: on a microtask (end of the current task), on setImmediate (after the
 * I/O poll), or adaptively (microtask when the event loop sat idle before this turn, setImmediate
 * when input was already queued).
 */
export type FlushTiming = "microtask" | "immediate" | "adaptive";

/**
 * For "adaptive": a turn that follows at least this much event-loop idle time (since the previous
 * flush was scheduled) is a lone request, flushed at once; shorter means input was queued.
 * Cross-thread wake-ups take longer than this; a non-blocking poll takes far less.
 */
const adaptiveIdleMsMin = 0.01;

export interface PortTransportOptions {
  /** This endpoint's peer number (a non-negative safe integer). */
  readonly self: number;
  /**
   * When the outboxes are posted. "microtask" posts at the end of the current task (lowest
   * latency); "immediate" waits for the check phase, so replies to several incoming batches of
   * one I/O poll share one postMessage (bigger batches, a little more latency); "adaptive" is
   * microtask after the loop sat idle and immediate when messages arrive back to back (reads
   * `performance.eventLoopUtilization()`; where that reports nothing, as on Deno 2.9, it
   * behaves as "immediate"). @default "microtask"
   */
  readonly flush?: FlushTiming;
  /**
   * Messages one peer's outbox holds in one turn; a lower bound caps memory per turn at the cost
   * of dropping bursts. @default transportLimits.outboxMessagesMax (16384), also its upper bound
   */
  readonly outboxMessagesMax?: number;
  /**
   * How batches are posted. "binary" encodes the hot message types into one
   * ArrayBuffer (less CPU and garbage per message); "clone" posts the batch as a structured-clone
   * array (the format before frames; kept for comparison). Receivers accept both.
   * @default "binary"
   */
  readonly wire?: WireFormat;
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
  readonly #wire: WireFormat;
  readonly #encoder = new FrameEncoder();
  readonly #connections = new Map<number, Connection>();
  readonly #counters = new TransportCounters();
  /** Connections whose outbox is not empty, in first-send order. */
  #pending: Connection[] = [];
  #flushScheduled = false;
  /** Event-loop idle time when the last flush was scheduled (for "adaptive"), in ms. */
  #idleMs = 0;
  #handler: MessageHandler | undefined;
  #closed = false;

  constructor(options: PortTransportOptions) {
    if (!isPeerNumber(options.self)) {
      throw new LoomTypeError(`port transport failed: self is ${describe(options.self)}, must be a non-negative safe integer`);
    }
    const flush = options.flush ?? "microtask";
    if (flush !== "microtask" && flush !== "immediate" && flush !== "adaptive") {
      throw new LoomTypeError(`port transport failed: flush is ${describe(flush)}, must be "microtask", "immediate" or "adaptive"`);
    }
    const outboxMessagesMax = options.outboxMessagesMax ?? transportLimits.outboxMessagesMax;
    if (!Number.isSafeInteger(outboxMessagesMax) || outboxMessagesMax < 1 || outboxMessagesMax > transportLimits.outboxMessagesMax) {
      throw new LoomRangeError(
        `port transport failed: outboxMessagesMax is ${describe(outboxMessagesMax)}, must be an integer in 1..${transportLimits.outboxMessagesMax}`,
      );
    }
    const wire = options.wire ?? "binary";
    if (wire !== "binary" && wire !== "clone") {
      throw new LoomTypeError(`port transport failed: wire is ${describe(wire)}, must be "binary" or "clone"`);
    }
    this.self = options.self;
    this.#wire = wire;
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
    else if (this.#flushTiming === "immediate") setImmediate(this.#flush);
    else {
      const idleMs = performance.eventLoopUtilization().idle;
      const waited = idleMs - this.#idleMs >= adaptiveIdleMsMin;
      this.#idleMs = idleMs;
      if (waited) queueMicrotask(this.#flush);
      else setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (const connection of pending) {
      const batch = connection.outbox;
      if (batch.length === 0) continue; // disconnected since the send
      connection.outbox = [];
      if (this.#wire === "binary") this.#postFrames(connection.port, batch);
      else {
        connection.port.postMessage(batch);
        this.#counters.batchesSent += 1;
        this.#counters.messagesCloned += batch.length;
      }
      this.#counters.messagesInBatches += batch.length;
    }
  };

  /**
   * Posts `batch` as binary frames (one unless it passes the frame size target). A frame of
   * `frameTransferBytesMin` or more is transferred; a smaller one is copied, which measured faster.
   */
  #postFrames(port: MessagePortLike, batch: readonly Message[]): void {
    for (let start = 0; start < batch.length; ) {
      const { buffer, clones, end } = this.#encoder.encode(batch, start);
      const transfer = buffer.byteLength >= frameTransferBytesMin ? [buffer] : undefined;
      const carrier: ArrayBuffer | FrameCarrier = clones.length === 0 ? buffer : { frame: buffer, clones };
      if (transfer === undefined) port.postMessage(carrier);
      else port.postMessage(carrier, transfer);
      this.#counters.batchesSent += 1;
      this.#counters.messagesCloned += clones.length;
      start = end;
    }
  }

  #receive(from: number, value: unknown): void {
    if (this.#closed) return;
    let messages: readonly Message[];
    try {
      messages = unpack(value);
    } catch (error) {
      if (!(error instanceof MalformedFrameError)) throw error;
      this.#counters.framesMalformed += 1;
      return;
    }
    if (messages.length === 0) return;
    const handler = this.#handler;
    assert(handler !== undefined, `port transport: a message from peer ${from} arrived before onMessage was called`);
    this.#counters.batchesReceived += 1;
    for (const message of messages) {
      this.#counters.messagesReceived += 1;
      handler(from, message);
    }
  }
}

/** The messages of one received postMessage. Throws MalformedFrameError for anything but a frame. */
function unpack(value: unknown): readonly Message[] {
  if (value instanceof ArrayBuffer) return decodeFrame(value);
  if (Array.isArray(value)) {
    for (const [index, message] of value.entries()) {
      if (!isMessage(message)) throw new MalformedFrameError(`element ${index} of a message array is not a message`, 0);
    }
    return value as Message[];
  }
  if (typeof value === "object" && value !== null) {
    const { frame, clones } = value as { frame?: unknown; clones?: unknown };
    if (frame instanceof ArrayBuffer && Array.isArray(clones)) return decodeFrame(frame, clones);
  }
  throw new MalformedFrameError(`a postMessage carried ${describe(value)}, not a frame`, 0);
}
