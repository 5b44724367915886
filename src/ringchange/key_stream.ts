/**
 * Key streaming for ring changes, on one node: the sender (scan the store once, send every key
 * whose replica set changes to its new replicas, in acknowledged chunks, paced), the receiver
 * (merge a chunk durably as one batch, acknowledge it), and the cleanup after a switch (drop the
 * keys this node no longer replicates). The ring-change protocol that orders these runs on the
 * main thread (docs/reconfiguration.md).
 *
 * Pure over its injected Store, Transport and Clock: the simulator runs it as the worker does.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import { mergeEntries, type StreamEntry } from "../coordinator/merge_entries.ts";
import { keyPosition } from "../ring/hash_ring.ts";
import { streamTargets } from "./transfer_plan.ts";
import type { WriteOperation } from "../storage/store.ts";
import type { NodeStore } from "../storage/tracked_store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { RingChangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { CleanupReport, StreamPlan, StreamReport } from "./ring_change_messages.ts";
import { placementOf, type RingSpec } from "../ring/ring_spec.ts";

/** Stream chunks: at most this many keys, and about this many bytes of versions, per chunk. */
const STREAM_CHUNK_KEYS = 256;
const STREAM_CHUNK_BYTES = 256 * 1024;
/** The scan lets queued requests run after this many keys even when it sends nothing. */
const STREAM_SCAN_YIELD_KEYS = 1024;
/** Chunks in flight to one target before the stream waits for an acknowledgement. */
const STREAM_WINDOW = 4;
/** A target that has not acknowledged a chunk by then failed: the ring change is abandoned. */
const STREAM_ACK_TIMEOUT_MS = 30_000;
export class KeyStreams {
  readonly #nodeId: number;
  readonly #store: NodeStore;
  readonly #transport: Transport;
  readonly #clock: Clock;
  /** Chunks this node sent and awaits acknowledgement of, by chunk number. */
  readonly #streamAcks = new Map<number, { resolve: (keysNew: number) => void; reject: (error: Error) => void; timer: TimerHandle }>();
  #nextChunk = 1;
  /** Streams the main thread abandoned (abortStream): their scans stop at the next chunk. */
  readonly #abortedStreams = new Set<number>();
  readonly #streamed = { keysSent: 0, keysReceived: 0, keysNew: 0 };

  constructor(options: { nodeId: number; store: NodeStore; transport: Transport; clock: Clock }) {
    this.#nodeId = options.nodeId;
    this.#store = options.store;
    this.#transport = options.transport;
    this.#clock = options.clock;
  }

  /** Keys streamed since the node started: sent, received, and new on arrival. */
  get streamed(): { readonly keysSent: number; readonly keysReceived: number; readonly keysNew: number } {
    return { ...this.#streamed };
  }

  /**
   * Scans the store once and sends every key whose replica set changes from `plan.before` to
   * `plan.after`, and of which this node was a replica before, to each of its new replicas, in
   * chunks, at most STREAM_WINDOW chunks in flight per target. Resolves when every chunk is
   * acknowledged (durably merged by the target); rejects when a target does not answer in time.
   * The scan sees the store as of the call: writes after it reach the new replicas through the
   * coordinators, which write to the old and new replica sets while the ring changes.
   */
  async streamKeys(plan: StreamPlan): Promise<StreamReport> {
    const before = placementOf(plan.before);
    const after = placementOf(plan.after);
    const chunkBytesMax = Math.min(STREAM_CHUNK_BYTES, Math.floor(this.#store.config.memtableBytes / 8));
    const outgoing = new Map<number, { entries: StreamEntry[]; bytes: number; inFlight: Promise<number>[] }>();
    const report = { streamId: plan.streamId, keysScanned: 0, keysSent: 0, keysMoved: 0, keysNew: 0, chunks: 0 };
    const startedMs = this.#clock.nowMs();
    let sentInChunks = 0;

    const checkAborted = () => {
      if (this.#abortedStreams.delete(plan.streamId)) throw new RingChangeError(`stream failed: stream ${plan.streamId} was abandoned`);
    };
    const send = async (target: number, force: boolean): Promise<void> => {
      const box = outgoing.get(target)!;
      if (box.entries.length === 0 || (!force && box.entries.length < STREAM_CHUNK_KEYS && box.bytes < chunkBytesMax)) return;
      while (box.inFlight.length >= STREAM_WINDOW) report.keysNew += await box.inFlight.shift()!;
      checkAborted();
      const chunk = this.#nextChunk++;
      const acknowledged = new Promise<number>((resolve, reject) => {
        const timer = this.#clock.setTimer(STREAM_ACK_TIMEOUT_MS, () => {
          this.#streamAcks.delete(chunk);
          reject(new RingChangeError(`stream failed: node ${target} did not acknowledge chunk ${chunk} within ${STREAM_ACK_TIMEOUT_MS} ms`));
        });
        this.#streamAcks.set(chunk, { resolve, reject, timer });
      });
      acknowledged.catch(() => {}); // awaited below; a rejection before then is not unhandled
      box.inFlight.push(acknowledged);
      this.#transport.send(target, { type: MessageType.streamChunk, streamId: plan.streamId, chunk, entries: box.entries });
      report.chunks++;
      sentInChunks += box.entries.length;
      box.entries = [];
      box.bytes = 0;
      // Pace the stream to keysPerSecond, and in any case let client requests queued behind the
      // scan run between chunks: a move shares the node with the traffic.
      await this.#paceTo(startedMs, sentInChunks, plan.keysPerSecond);
    };

    for (const entry of this.#store.entries()) {
      if (++report.keysScanned % STREAM_SCAN_YIELD_KEYS === 0) {
        await this.#pause(0);
        checkAborted();
      }
      const position = keyPosition(entry.key);
      const targets = streamTargets(before, after, position, this.#nodeId);
      if (targets.length > 0 && before.ring.preferenceListAt(position, before.n)[0] === this.#nodeId) report.keysMoved += targets.length;
      for (const target of targets) {
        let box = outgoing.get(target);
        if (!box) outgoing.set(target, (box = { entries: [], bytes: 0, inFlight: [] }));
        box.entries.push(entry);
        box.bytes += entry.key.length + entry.versions.reduce((sum, version) => sum + version.version.length + (version.value?.length ?? 0), 0);
        report.keysSent++;
        await send(target, false);
      }
    }
    for (const [target, box] of outgoing) {
      await send(target, true);
      for (const acknowledged of box.inFlight) report.keysNew += await acknowledged;
    }
    this.#abortedStreams.delete(plan.streamId); // an abort that came after the last chunk
    this.#streamed.keysSent += report.keysSent;
    return report;
  }

  /**
   * After a ring change: removes every key this node does not replicate under `ring` (it lost the
   * key's range, or N went down). Riak's handoff does the same; Cassandra leaves it to `nodetool
   * cleanup`. Each key is replaced by an empty version set (absent; dropped by the next bottommost
   * compaction), in batches paced to `keysPerSecond`. The caller runs it only when no move is in
   * flight and requests routed under the old ring have finished, so no write for a key this node
   * replicates can be undone by it.
   */
  async cleanup(ring: RingSpec, keysPerSecond: number, onDrop?: (versions: readonly Version[]) => void): Promise<CleanupReport> {
    const placement = placementOf(ring);
    const report = { keysScanned: 0, keysDropped: 0 };
    const startedMs = this.#clock.nowMs();
    let batch: WriteOperation[] = [];
    const drop = async () => {
      if (batch.length === 0) return;
      if (this.#store.writeWouldWait) await this.#store.whenWritable();
      const writing = this.#store.write(batch);
      report.keysDropped += batch.length;
      batch = [];
      await writing;
      await this.#paceTo(startedMs, report.keysDropped, keysPerSecond);
    };
    for (const entry of this.#store.entries()) {
      if (++report.keysScanned % STREAM_SCAN_YIELD_KEYS === 0) await this.#pause(0);
      if (placement.ring.preferenceListAt(keyPosition(entry.key), placement.n).includes(this.#nodeId)) continue;
      onDrop?.(entry.versions);
      batch.push({ key: entry.key, kind: "put", versions: [] });
      if (batch.length >= STREAM_CHUNK_KEYS) await drop();
    }
    await drop();
    return report;
  }

  /** Resolves after `ms` on the node's clock (0: after the requests queued now have run). */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.#clock.setTimer(Math.max(0, ms), resolve));
  }

  /** Waits until `done` keys since `startedMs` are within `perSecond`; yields at least once. */
  #paceTo(startedMs: number, done: number, perSecond: number): Promise<void> {
    return this.#pause(startedMs + (done / perSecond) * 1000 - this.#clock.nowMs());
  }

  /** The main thread abandoned stream `streamId` (a node went down): stop sending its chunks. */
  abortStream(streamId: number): void {
    this.#abortedStreams.add(streamId);
  }

  /** A target acknowledged (or refused) one of this node's chunks. */
  onStreamAck(message: Message): void {
    const waiting = this.#streamAcks.get(message.chunk as number);
    if (!waiting) return;
    this.#streamAcks.delete(message.chunk as number);
    this.#clock.clearTimer(waiting.timer);
    if (message.ok === true) waiting.resolve(message.keysNew as number);
    else waiting.reject(new RingChangeError(`stream failed: chunk ${String(message.chunk)} refused: ${String(message.error)}`));
  }

  /** Merges a streamed chunk into the store as one atomic batch, then acknowledges it. */
  async onStreamChunk(from: number, message: Message): Promise<void> {
    const entries = message.entries as StreamEntry[];
    let keysNew = 0;
    let error: string | undefined;
    try {
      keysNew = await mergeEntries(this.#store, entries);
      this.#streamed.keysReceived += entries.length;
      this.#streamed.keysNew += keysNew;
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    this.#transport.send(from, {
      type: MessageType.streamAck,
      streamId: message.streamId,
      chunk: message.chunk,
      ok: error === undefined,
      keysNew,
      ...(error === undefined ? {} : { error }),
    });
  }

  /** Fails the streams waiting for acknowledgements: the node is stopping. */
  stop(): void {
    for (const waiting of this.#streamAcks.values()) {
      this.#clock.clearTimer(waiting.timer);
      waiting.reject(new RingChangeError("stream failed: node stopped"));
    }
    this.#streamAcks.clear();
  }
}
