/**
 * Client requests on the main thread: validation (typed refusals before anything is sent), routing
 * (router.ts) to a coordinating node, the table of requests in flight (request_table.ts), and the
 * coordinators' answers. Also `replicaValues`, which reads each replica's own copy of a key.
 *
 * Thread contract: one thread (the main thread, or the simulator's). Pure over the injected
 * Transport and Clock.
 */
import type { Clock } from "../io/clock.ts";
import type { ReadReply } from "../coordinator/get_session.ts";
import type { HashRing } from "../ring/hash_ring.ts";
import { toKeyBytes, toValueBytes, type KeyInput, type ValueInput } from "../storage/store_input.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { decodeError, type PlainError } from "../util/error_codec.ts";
import { describe, LoomTypeError, QuorumError } from "../util/errors.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { emptyContext, joinContexts } from "../version/dotted_version_vector.ts";
import { decodeContext, encodeContext } from "../version/version_codec.ts";
import type { ClusterConfig } from "./cluster_config.ts";
import { resolveRequestOptions } from "./request_options.ts";
import type { RequestAction, RequestTable } from "./request_table.ts";
import { routeRequest } from "./router.ts";

/** Options of one read. Unknown names, wrong types and values out of range are refused. */
export interface RequestOptions {
  /** Overrides the cluster's R for this read; 1..N. (Writes take `w`.) */
  readonly r?: number | undefined;
  /**
   * Answers that must come from the key's primaries, not from fallbacks standing in for primaries
   * that are down (Riak's pr); 0..N. @default 0
   */
  readonly pr?: number | undefined;
  /** Overrides the request timeout, in ms; 1..600000. */
  readonly timeoutMs?: number | undefined;
}

export interface WriteOptions {
  /** Overrides the cluster's W for this write; 1..N. */
  readonly w?: number | undefined;
  /**
   * Acknowledgements that must come from the key's primaries, not from fallbacks holding hints
   * (Riak's pw); 0..N. @default 0
   */
  readonly pw?: number | undefined;
  /** Overrides the request timeout, in ms; 1..600000. */
  readonly timeoutMs?: number | undefined;
  /** The context from an earlier get: the write replaces exactly the siblings it saw. */
  readonly context?: string | undefined;
}

export interface GetResult {
  /** Sibling values, newest first; [] when absent or deleted. */
  readonly values: Uint8Array[];
  /** Pass it with the next write of this key. */
  readonly context: string;
  /** The node that coordinated the read (the first live replica of the key). */
  readonly coordinator: number;
}

export interface WriteResult {
  /**
   * The context of the key's versions at the coordinator after the write: the new version and
   * the concurrent siblings it kept. Pass it with the next write of this key, which then replaces
   * exactly `values`.
   */
  readonly context: string;
  /**
   * What that context covers, newest first: the written value (not for a delete) and the siblings
   * the write did not replace, as Riak's return_body gives them. One value when nobody wrote the
   * key concurrently.
   */
  readonly values: Uint8Array[];
  /** The node that coordinated the write (the first live replica of the key). */
  readonly coordinator: number;
}

export interface ClusterRequestsOptions {
  readonly transport: Transport;
  readonly clock: Clock;
  /** Verifies contexts before anything is sent; signs joined ones. */
  readonly signer: ContextSigner;
  readonly requests: RequestTable;
  readonly config: () => ClusterConfig;
  readonly ring: () => HashRing;
  /** The ring being moved to and its N, while keys move (writes go to both rings' replicas). */
  readonly moving: () => { readonly ring: HashRing; readonly n: number } | null;
  /** Nodes the router avoids. */
  readonly unavailable: { has(node: number): boolean };
  /** Nodes whose thread is known to have ended. */
  readonly isDown: (node: number) => boolean;
  /** Throws ClosedError once the cluster closed. */
  readonly checkOpen: (action: string) => void;
}

export class ClusterRequests {
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #signer: ContextSigner;
  readonly #requests: RequestTable;
  readonly #config: () => ClusterConfig;
  readonly #ring: () => HashRing;
  readonly #moving: ClusterRequestsOptions["moving"];
  readonly #unavailable: { has(node: number): boolean };
  readonly #isDown: (node: number) => boolean;
  readonly #checkOpen: (action: string) => void;
  /** replicaValues() reads waiting for one replica's answer. */
  readonly #inspections = new Map<number, (reply: ReadReply | null) => void>();
  #nextInspection = 1;

  constructor(options: ClusterRequestsOptions) {
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#signer = options.signer;
    this.#requests = options.requests;
    this.#config = options.config;
    this.#ring = options.ring;
    this.#moving = options.moving;
    this.#unavailable = options.unavailable;
    this.#isDown = options.isDown;
    this.#checkOpen = options.checkOpen;
  }

  /**
   * See Cluster.put. Every failure is a rejection; refusals come before anything is sent. Not an
   * async function: the request goes out in this call and the caller gets the table's promise
   * itself, settled with a result object made for it alone (one promise and no copy per layer).
   */
  put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    try {
      const keyBytes = ownBytes(key, toKeyBytes("put", key));
      const valueBytes = ownBytes(value, toValueBytes("put", value));
      return this.#write("put", keyBytes, valueBytes, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  delete(key: KeyInput, options?: WriteOptions): Promise<WriteResult> {
    try {
      return this.#write("delete", ownBytes(key, toKeyBytes("delete", key)), null, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  get(key: KeyInput, options?: RequestOptions): Promise<GetResult> {
    try {
      const keyBytes = ownBytes(key, toKeyBytes("get", key));
      this.#checkOpen("get");
      const { quorum: r, primaryQuorum: pr, timeoutMs } = resolveRequestOptions("get", options, this.#config());
      // While keys move, reads stay on the old replicas: they hold every acknowledged write (writes
      // reach W of them), and the new ones are complete only once streaming has finished.
      return this.#send("get", keyBytes, r, pr, timeoutMs, null, null, "") as Promise<GetResult>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Throws synchronously on a refusal; the public methods turn that into a rejection. */
  #write(action: "put" | "delete", key: Uint8Array, value: Uint8Array | null, options: WriteOptions | undefined): Promise<WriteResult> {
    this.#checkOpen(action);
    const { quorum: w, primaryQuorum: pw, timeoutMs, context } = resolveRequestOptions(action, options, this.#config());
    // A bad context (made up, altered, another key's or cluster's) is refused here, before anything is sent.
    if (context !== "") decodeContext(context, { key, signer: this.#signer });
    // While keys move, a write goes to the old and the new replicas and needs W of each, so that
    // whichever ring serves the next read, W of its replicas hold the write.
    const moving = this.#moving();
    const pendingList = moving ? moving.ring.preferenceList(key, moving.n) : null;
    return this.#send(action, key, w, pw, timeoutMs, pendingList, value, context) as Promise<WriteResult>;
  }

  /** See Cluster.joinContexts. */
  joinContexts(key: KeyInput, contexts: readonly string[]): string {
    const binding = { key: toKeyBytes("join contexts", key), signer: this.#signer };
    if (!Array.isArray(contexts)) throw new LoomTypeError(`join contexts failed: contexts is ${describe(contexts)}, must be an array of strings`);
    const decoded = contexts.map((context) => (context === "" ? emptyContext : decodeContext(context, binding)));
    return encodeContext(joinContexts(decoded), binding);
  }

  /**
   * Routes a request (router.ts) and hands it to its coordinator. Refused at once, "not-applied",
   * when fewer replicas are up than it needs: nothing is sent.
   */
  #send(
    action: RequestAction,
    key: Uint8Array,
    required: number,
    primariesRequired: number,
    timeoutMs: number,
    pendingList: number[] | null,
    value: Uint8Array | null,
    context: string,
  ): Promise<unknown> {
    // The key's nodes in ring order: N primaries, then up to N fallbacks (enough stand-ins for
    // every primary to be down).
    const config = this.#config();
    const n = config.n;
    const order = this.#ring().preferenceList(key, Math.min(config.nodes, 2 * n));
    const route = routeRequest({
      action,
      preferenceList: order.length > n ? order.slice(0, n) : order,
      fallbacks: order.length > n ? order.slice(n) : [],
      pendingList,
      required,
      primariesRequired,
      down: this.#unavailable,
    });
    if (!route.ok) {
      const { acknowledged, replicas, detail } = route;
      return Promise.reject(new QuorumError({ action, acknowledged, required, replicas, outcome: "not-applied", detail }));
    }
    // One message object per request, in the exact shape the frame codec encodes; requestId and
    // timeoutMs are filled in at the first send, and a retry (rare) sends a copy with its own.
    const message: { type: MessageType; [field: string]: unknown } =
      action === "get"
        ? { type: MessageType.requestGet, requestId: 0, key, preferenceList: route.preferenceList, r: required, timeoutMs, fallbacks: route.fallbacks, pr: primariesRequired }
        : {
            type: MessageType.requestPut,
            requestId: 0,
            key,
            value,
            context,
            preferenceList: route.preferenceList,
            w: required,
            timeoutMs,
            pruneThreshold: config.pruneThreshold,
            fallbacks: route.fallbacks,
            pw: primariesRequired,
          };
    if (route.quorumGroups !== undefined) message["quorumGroups"] = route.quorumGroups;
    let sent = false;
    // The coordinator answers by its deadline; the table retries reads and refusals on the next
    // candidate and guards against a coordinator that died or hangs (request_table.ts).
    return this.#requests.open({
      action,
      replicas: route.replicas,
      required,
      candidates: route.candidates,
      timeoutMs,
      send: (coordinator, requestId, remainingMs) => {
        if (sent) return this.#transport.send(coordinator, { ...message, requestId, timeoutMs: remainingMs });
        sent = true;
        message["requestId"] = requestId;
        message["timeoutMs"] = remainingMs;
        this.#transport.send(coordinator, message);
      },
      available: this.#available,
    });
  }

  readonly #available = (node: number): boolean => !this.#unavailable.has(node);

  /** A message from a node to the main thread: a response, or an inspection's read reply. */
  onMessage(message: Message): void {
    if (message.type === MessageType.readReply) {
      const waiting = this.#inspections.get(message.requestId as number);
      this.#inspections.delete(message.requestId as number);
      return waiting?.(message.reply as ReadReply);
    }
    if (message.type !== MessageType.response) return;
    const result = message.result as { ok: true; context: string; values: Uint8Array[] } | { ok: false; error: PlainError; retry?: boolean };
    const node = message.node as number;
    // The caller's result, made here once: `values` is the decoder's fresh array of fresh copies.
    if (result.ok) this.#requests.settle(message.requestId as number, node, { ok: true, value: { values: result.values, context: result.context, coordinator: node } });
    else this.#requests.settle(message.requestId as number, node, { ok: false, error: decodeError(result.error), retry: result.retry === true });
  }

  /**
   * What each replica of `key` holds itself: no quorum, no merge, no read repair; null for a
   * replica that is down or did not answer within the request timeout.
   */
  async replicaValues(key: KeyInput): Promise<{ node: number; values: Uint8Array[] | null }[]> {
    const keyBytes = toKeyBytes("replica values", key);
    this.#checkOpen("replica values");
    const replicas = this.#ring().preferenceList(keyBytes, this.#config().n);
    return Promise.all(
      replicas.map(async (node) => {
        if (this.#isDown(node)) return { node, values: null };
        const requestId = this.#nextInspection++;
        const reply = await new Promise<ReadReply | null>((resolve) => {
          const timer = this.#clock.setTimer(this.#config().requestTimeoutMs, () => {
            this.#inspections.delete(requestId);
            resolve(null);
          });
          this.#inspections.set(requestId, (answer) => {
            this.#clock.clearTimer(timer);
            resolve(answer);
          });
          this.#transport.send(node, { type: MessageType.read, requestId, key: keyBytes });
        });
        if (!reply?.ok) return { node, values: null };
        return { node, values: reply.versions.flatMap((version) => (version.value === null ? [] : [version.value])) };
      }),
    );
  }

  preferenceList(key: KeyInput): number[] {
    return this.#ring().preferenceList(toKeyBytes("preference list", key), this.#config().n);
  }

  /** The cluster closed: inspections still waiting resolve with no answer. */
  close(): void {
    for (const waiting of this.#inspections.values()) waiting(null);
    this.#inspections.clear();
  }
}

/** `bytes` as the request's own: a caller's buffer is copied, so changing it later changes nothing. */
function ownBytes(input: unknown, bytes: Uint8Array): Uint8Array {
  return input === bytes ? bytes.slice() : bytes;
}
