/**
 * The data-plane transport a protocol driver uses to exchange messages with its peers (other node
 * workers, or the main thread), named by number. Two implementations pass one conformance suite
 * (test/transport.test.ts): PortTransport over real MessagePorts and SimTransport, the simulated
 * network of the deterministic simulator.
 *
 * Contract:
 * - Delivery is FIFO per (from, to) pair. Without faults every message is delivered exactly once;
 *   with faults a message may be lost, never duplicated or reordered within its pair.
 * - `send` never throws for a down, unknown or partitioned peer: the message is dropped and counted
 *   in `stats()`. It throws ClosedError only after `close()` (use after close is a caller bug).
 * - Delivery is asynchronous: a handler never runs inside `send`.
 * - Ownership: a sent message belongs to the transport from `send` on; the caller must not mutate
 *   it (PortTransport copies it at the end of the turn, SimTransport at send time).
 * - All methods are called from the thread that owns the transport.
 */
import type { Message } from "./message_types.ts";

export type MessageHandler = (from: number, message: Message) => void;

export interface TransportStats {
  /** Messages accepted by `send` (queued for a peer; dropped ones are not counted). */
  readonly messagesSent: number;
  /** Messages handed to the handler. */
  readonly messagesReceived: number;
  /** Messages dropped because the destination is unknown, down, crashed or partitioned away. */
  readonly messagesDroppedNoPeer: number;
  /** Messages dropped because the destination's outbox or the network's queue was full. */
  readonly messagesDroppedOutboxFull: number;
  /** Messages lost by a fault (simulated loss); always 0 on real ports. */
  readonly messagesLost: number;
  /** Physical sends (postMessage calls); equals `messagesSent` on the simulated network. */
  readonly batchesSent: number;
  /** Physical receives (message events) carrying at least one message. */
  readonly batchesReceived: number;
  /** messagesSent / batchesSent, 0 before the first batch. */
  readonly averageBatchSize: number;
  /** Messages posted by structured clone (no binary codec for their shape); 0 on the simulated network. */
  readonly messagesCloned: number;
  /** Received frames dropped whole because they were malformed; 0 on the simulated network. */
  readonly framesMalformed: number;
}

export interface Transport {
  /** This endpoint's own peer number. */
  readonly self: number;
  /** Queues `message` for `to`. Never throws for a down peer (see the contract above). */
  send(to: number, message: Message): void;
  /** Sets the one handler for incoming messages, replacing any earlier one. */
  onMessage(handler: MessageHandler): void;
  /** Detaches from the network; queued outgoing messages are dropped. Idempotent. */
  close(): void;
  stats(): TransportStats;
}

/** Mutable counters behind TransportStats, shared by the implementations. */
export class TransportCounters {
  messagesSent = 0;
  messagesReceived = 0;
  messagesDroppedNoPeer = 0;
  messagesDroppedOutboxFull = 0;
  messagesLost = 0;
  batchesSent = 0;
  batchesReceived = 0;
  /** Messages carried by the batches sent so far (accepted messages still in an outbox excluded). */
  messagesInBatches = 0;
  messagesCloned = 0;
  framesMalformed = 0;

  snapshot(): TransportStats {
    return {
      messagesSent: this.messagesSent,
      messagesReceived: this.messagesReceived,
      messagesDroppedNoPeer: this.messagesDroppedNoPeer,
      messagesDroppedOutboxFull: this.messagesDroppedOutboxFull,
      messagesLost: this.messagesLost,
      batchesSent: this.batchesSent,
      batchesReceived: this.batchesReceived,
      averageBatchSize: this.batchesSent === 0 ? 0 : this.messagesInBatches / this.batchesSent,
      messagesCloned: this.messagesCloned,
      framesMalformed: this.framesMalformed,
    };
  }
}

/** Whether `value` can name a peer: a non-negative safe integer. */
export function isPeerNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
