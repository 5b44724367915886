/**
 * A causal context cannot poison a key: contexts are signed with the cluster's secret and bound to
 * their key, so a made-up, altered or foreign context is refused (LOOM_INVALID_ARGUMENT, "bad
 * context") by the main thread before anything is sent, and by a node that is sent one anyway.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createPrng } from "../src/io/prng.ts";
import { SimClock } from "../src/io/sim_clock.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { CONTEXT_SECRET_FILE } from "../src/runtime/cluster_secret.ts";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { startHttpFront } from "../src/runtime/http_front.ts";
import { CounterLease } from "../src/node/counter_lease.ts";
import { NodeCore } from "../src/node/node_core.ts";
import { clusterConfigDefaults } from "../src/cluster/cluster_config.ts";
import { MAIN_PEER } from "../src/node/node_messages.ts";
import { MessageType, type Message } from "../src/transport/message_types.ts";
import { SimNetwork } from "../src/transport/sim_transport.ts";
import { decodeError, type PlainError } from "../src/util/error_codec.ts";
import { createContextSigner } from "../src/version/context_signer.ts";
import { counterMax } from "../src/version/dotted_version_vector.ts";
import { encodeContext } from "../src/version/version_codec.ts";
import { openSimStore, STORE_DIRECTORY } from "./support/store_harness.ts";
import { rejectsWithCode, type CodedError } from "./support/assertions.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const encoder = new TextEncoder();
const text = (values: readonly Uint8Array[]) => values.map((value) => new TextDecoder().decode(value));

/** One 3-node cluster for the file, on a directory of its own (reopened by the last cluster test). */
let cluster: Cluster;

test.before(async () => {
  cluster = await createCluster({ nodes: 3, vnodesPerNode: 16, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
});

test.after(async () => {
  await cluster.close();
  rmSync(cluster.dataDir, { recursive: true, force: true });
});

function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}

/**
 * The context that used to poison a key: format 1 (no tag), one frontier entry claiming counter
 * 2^53 - 2 for `actor`. A coordinator that believed it would stamp counter 2^53 - 1, after which
 * no counter is left for that key.
 */
function poisonFormat1(actor: number): string {
  const body = [1, 1, ...varint(1_700_000_000_000), actor * 2 + 1, ...varint(counterMax - 1), 0];
  return btoa(String.fromCharCode(...body)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The same claim in the signed format, signed with a secret that is not the cluster's. */
function poisonSignedElsewhere(key: string, actor: number): string {
  const foreign = createContextSigner(new Uint8Array(16).fill(0x5a));
  return encodeContext({ entries: [{ actor, counter: counterMax - 1, timestampMs: 1_700_000_000_000, frontier: true }] }, { key: encoder.encode(key), signer: foreign });
}

async function rejectsAsBadContext(promise: Promise<unknown>, label: string): Promise<void> {
  const error = await rejectsWithCode(() => promise, "LOOM_INVALID_ARGUMENT", /bad context/);
  assert.is(error.outcome, "not-applied", label);
}

/** Requests the nodes saw: refused there (failed) or coordinated (put, get). */
async function nodeRequests(): Promise<number> {
  const { nodes } = await cluster.stats();
  return nodes.reduce((sum, node) => sum + node.requests.put + node.requests.get + node.requests.failed, 0);
}

test("a forged context claiming counter 2^53 - 2 is refused before it reaches a node, and the key stays writable", async () => {
  const key = "poison";
  await cluster.put(key, "v1");
  const actor = cluster.preferenceList(key)[0]!;
  const before = await nodeRequests();
  for (const forged of [poisonFormat1(actor), poisonSignedElsewhere(key, actor)]) {
    await rejectsAsBadContext(cluster.put(key, "poisoned", { context: forged }), `put ${forged}`);
    await rejectsAsBadContext(cluster.delete(key, { context: forged }), `delete ${forged}`);
  }
  assert.is(await nodeRequests(), before, "the main thread refused them: no node was sent anything");
  assert.equal(text((await cluster.get(key)).values), ["v1"]);
  await cluster.put(key, "v2"); // blind: kept beside v1
  await cluster.delete(key); // blind: a tombstone beside them
  const read = await cluster.get(key);
  assert.equal(text(read.values).sort(), ["v1", "v2"]);
  await cluster.put(key, "v3", { context: read.context });
  assert.equal(text((await cluster.get(key)).values), ["v3"]);
});

test("a context read from another key is refused and leaves the key unchanged", async () => {
  const keyA = "account:a";
  const coordinator = cluster.preferenceList(keyA)[0];
  // Key B has the same coordinator and is written after A: its context covers A's version by
  // counter, so if contexts were not bound to their key it would silently supersede A's value.
  const keyB = Array.from({ length: 1000 }, (_, index) => `account:b${index}`).find((key) => cluster.preferenceList(key)[0] === coordinator)!;
  await cluster.put(keyA, "a1");
  await cluster.put(keyB, "b1");
  const { context: contextOfB } = await cluster.get(keyB);
  await rejectsAsBadContext(cluster.put(keyA, "written with B's context", { context: contextOfB }), "put");
  await rejectsAsBadContext(cluster.delete(keyA, { context: contextOfB }), "delete");
  assert.equal(text((await cluster.get(keyA)).values), ["a1"]);
  assert.throws(() => cluster.joinContexts(keyA, [contextOfB]), /bad context/);
});

test("a context from another cluster is refused", async () => {
  const other = await createCluster({ nodes: 1, n: 1, w: 1, r: 1, vnodesPerNode: 16, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  try {
    await other.put("shared", "there");
    const { context } = await other.get("shared");
    await cluster.put("shared", "here");
    await rejectsAsBadContext(cluster.put("shared", "overwritten", { context }), "put");
    assert.equal(text((await cluster.get("shared")).values), ["here"]);
  } finally {
    await other.close();
    rmSync(other.dataDir, { recursive: true, force: true });
  }
});

test("contexts the cluster joins supersede every write they cover", async () => {
  const { context: base } = await cluster.put("cart", "base");
  const [apple, pear] = await Promise.all([cluster.put("cart", "apple", { context: base }), cluster.put("cart", "pear", { context: base })]);
  assert.equal(text((await cluster.get("cart")).values).sort(), ["apple", "pear"]);
  await cluster.put("cart", "apple+pear", { context: cluster.joinContexts("cart", [apple.context, pear.context, ""]) });
  assert.equal(text((await cluster.get("cart")).values), ["apple+pear"]);
});

test("a forged X-Loom-Context header answers 400 with LOOM_INVALID_ARGUMENT and changes nothing", async () => {
  const front = await startHttpFront(cluster);
  try {
    const url = `${front.url}/items/http%3Apoison`;
    assert.is((await fetch(url, { method: "PUT", body: "v1" })).status, 204);
    const actor = cluster.preferenceList("http:poison")[0]!;
    const forged = await fetch(url, { method: "PUT", body: "poisoned", headers: { "X-Loom-Context": poisonFormat1(actor) } });
    assert.is(forged.status, 400);
    const body = (await forged.json()) as { error: string; message: string };
    assert.is(body.error, "LOOM_INVALID_ARGUMENT");
    assert.match(body.message, /bad context: context format 1 predates signed contexts/);
    const read = await fetch(url);
    assert.is(read.status, 200);
    assert.is(await read.text(), "v1");
    const written = await fetch(url, { method: "PUT", body: "v2", headers: { "X-Loom-Context": read.headers.get("x-loom-context")! } });
    assert.is(written.status, 204, "the key stays writable");
  } finally {
    await front.close();
  }
});

test("contexts handed out before a close still verify after the cluster reopens on its directory", async () => {
  await cluster.put("durable", "before");
  const { context } = await cluster.get("durable");
  const dataDir = cluster.dataDir;
  await cluster.close();
  assert.ok(existsSync(join(dataDir, CONTEXT_SECRET_FILE)), "the secret is kept in the data directory");
  cluster = await createCluster({ dataDir, nodes: 3, vnodesPerNode: 16, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  await cluster.put("durable", "after", { context });
  assert.equal(text((await cluster.get("durable")).values), ["after"], "the old context superseded the value it read");
  await rejectsAsBadContext(cluster.put("durable", "forged", { context: poisonSignedElsewhere("durable", 0) }), "forged after reopen");
});

// ---- a node verifies too ----------------------------------------------------------------------

test("a node refuses a forged context that reaches it, and writes nothing", async () => {
  const fs = new SimFileSystem(createPrng(3));
  const store = await openSimStore(fs);
  const network = new SimNetwork({ prng: createPrng(4) });
  const signer = createContextSigner(new Uint8Array(16).fill(0x11));
  const lease = CounterLease.open(fs, STORE_DIRECTORY);
  const node = new NodeCore({ nodeId: 0, store, transport: network.endpoint(0), clock: new SimClock(), signer, lease, actor: 0, prng: createPrng(5), generation: 1, settings: { members: [0], ring: { nodes: [0], vnodesPerNode: 8, n: 1 }, gossip: clusterConfigDefaults.gossip, handoff: clusterConfigDefaults.handoff, antiEntropy: clusterConfigDefaults.antiEntropy, readFanout: clusterConfigDefaults.readFanout, cleanupsPending: [] } });
  const main = network.endpoint(MAIN_PEER);
  const answers = new Map<number, { ok: boolean; error?: PlainError }>();
  main.onMessage((_from, message) => {
    if (message.type === MessageType.response) answers.set(message.requestId as number, message.result as { ok: boolean; error?: PlainError });
  });
  const key = encoder.encode("k");
  const put = async (requestId: number, context: string): Promise<{ ok: boolean; error?: PlainError }> => {
    const request: Message = { type: MessageType.requestPut, requestId, key, value: encoder.encode(`v${requestId}`), context, preferenceList: [0], w: 1, timeoutMs: 1000, pruneThreshold: 8 };
    main.send(0, request);
    for (let turn = 0; turn < 100 && !answers.has(requestId); turn++) {
      network.deliverAll();
      await new Promise((resolve) => setTimeout(resolve, 0)); // the store's write resolves
    }
    return answers.get(requestId)!;
  };
  try {
    assert.ok((await put(1, "")).ok);
    for (const [requestId, forged] of [[2, poisonFormat1(0)], [3, poisonSignedElsewhere("k", 0)]] as const) {
      const answer = await put(requestId, forged);
      assert.not.ok(answer.ok, forged);
      const error = decodeError(answer.error!) as CodedError;
      assert.is(error.code, "LOOM_INVALID_ARGUMENT");
      assert.match(error.message, /bad context/);
    }
    assert.is(store.get(key).length, 1, "only the blind write was stored");
    assert.ok((await put(4, "")).ok, "the key stays writable");
  } finally {
    node.stop();
    await store.close();
    main.close();
  }
});

test.run();
