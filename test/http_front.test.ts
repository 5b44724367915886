/**
 * The HTTP front over a real 3-node cluster shared by every test of the file: keys taken from the
 * raw path, request options in the query, body limits, methods, routing headers and the status of
 * every failure. Requests go through node:http, which sends paths as given (fetch would normalise
 * them), or through a raw socket where the test watches the connection itself.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { eventually } from "./support/eventually.ts";
import { Buffer } from "node:buffer";
import { rmSync } from "node:fs";
import { Agent, request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { startHttpFront, type HttpFront } from "../src/runtime/http_front.ts";
import { errorAnswer } from "../src/runtime/http_status.ts";
import {
  BusyError,
  ClosedError,
  CorruptionError,
  IoError,
  LoomRangeError,
  LoomTypeError,
  QuorumError,
  RingChangeError,
  TooManySiblingsError,
} from "../src/util/errors.ts";
import { limits } from "../src/util/limits.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

let cluster: Cluster;
let front: HttpFront;
let port: number;
/** A request without an answer by then fails its test instead of hanging the suite. */
const REQUEST_TIMEOUT_MS = 5000;
/** Keep-alive, so that a `Connection: close` answer is the front's decision, not the client's. */
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

test.before(async () => {
  cluster = await createCluster({ nodes: 3, vnodesPerNode: 16, memtableBytes: 4 * 1024 * 1024, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  front = await startHttpFront(cluster);
  port = Number(new URL(front.url).port);
});

test.after(async () => {
  agent.destroy();
  await front.close();
  await cluster.close();
  rmSync(cluster.dataDir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

interface ErrorJson {
  readonly error: string;
  readonly message: string;
  readonly outcome: string;
}

/** One request with `path` sent exactly as given. */
function call(method: string, path: string, options: { headers?: Record<string, string>; body?: string | Uint8Array } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: "127.0.0.1", port, method, path, headers: options.headers ?? {}, agent }, (incoming) => {
      const parts: Buffer[] = [];
      incoming.on("data", (part: Buffer) => parts.push(part));
      incoming.on("end", () => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(parts) }));
      incoming.on("error", reject);
    });
    outgoing.on("error", reject);
    outgoing.setTimeout(REQUEST_TIMEOUT_MS, () => outgoing.destroy(new Error(`${method} ${path.slice(0, 60)}: no answer`)));
    outgoing.end(options.body);
  });
}

/**
 * Uploads `bytes` bytes in 64 KiB writes and resolves with the answer as soon as it is complete,
 * without waiting for the upload to finish; a connection error rejects (a reset instead of an answer).
 */
function upload(method: string, path: string, options: { bytes: number; declare: boolean; headers?: Record<string, string> }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...(options.declare ? { "Content-Length": String(options.bytes) } : {}), ...options.headers };
    const outgoing = request({ host: "127.0.0.1", port, method, path, headers, agent });
    let answered = false;
    outgoing.on("response", (incoming) => {
      answered = true;
      const parts: Buffer[] = [];
      incoming.on("data", (part: Buffer) => parts.push(part));
      incoming.on("end", () => {
        resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(parts) });
        outgoing.destroy();
      });
    });
    outgoing.on("error", reject);
    outgoing.setTimeout(REQUEST_TIMEOUT_MS, () => outgoing.destroy(new Error(`${method} ${path.slice(0, 60)}: no answer`)));
    if (options.headers?.["Expect"] === "100-continue") {
      outgoing.on("continue", () => outgoing.destroy(new Error("the front invited a body it should refuse")));
      return;
    }
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    const pump = () => {
      while (sent < options.bytes && !answered && !outgoing.destroyed) {
        const piece = chunk.subarray(0, Math.min(chunk.length, options.bytes - sent));
        sent += piece.length;
        if (!outgoing.write(piece)) return void outgoing.once("drain", pump);
      }
      if (!answered && !outgoing.destroyed) outgoing.end();
    };
    pump();
  });
}

function json<T>(answer: Answer): T {
  return JSON.parse(answer.body.toString("utf8")) as T;
}

/** Asserts `answer` is the JSON error `code` with `status`, its outcome in body and header; returns the body. */
function assertError(answer: Answer, status: number, code: string, outcome = "not-applied"): ErrorJson {
  assert.is(answer.status, status, answer.body.toString("utf8"));
  assert.match(String(answer.headers["content-type"]), /application\/json/);
  const body = json<ErrorJson>(answer);
  assert.is(body.error, code);
  assert.is(body.outcome, outcome);
  assert.is(answer.headers["x-loom-outcome"], outcome);
  assert.type(body.message, "string");
  return body;
}

async function valuesOf(key: string | Uint8Array): Promise<string[]> {
  return (await cluster.get(key)).values.map((value) => Buffer.from(value).toString("latin1"));
}

/** Runs `work` with `node` crashed, then restarts it. */
async function withNodeDown(node: number, work: () => Promise<void>): Promise<void> {
  await cluster.faults.crash(node);
  try {
    await work();
  } finally {
    await cluster.faults.restart(node);
  }
}

test("a value put over HTTP reads back with its context and routing headers", async () => {
  const put = await call("PUT", "/items/user%3A1", { body: "alice" });
  assert.is(put.status, 204);
  assert.ok(put.headers["x-loom-context"], "the write's context");
  assert.is(put.headers["x-node-count"], "3");
  assert.is(put.headers["connection"], "keep-alive");
  const read = await call("GET", "/items/user%3A1");
  assert.is(read.status, 200);
  assert.is(read.body.toString(), "alice");
  assert.is(read.headers["x-loom-siblings"], "1");
  assert.equal(await valuesOf("user:1"), ["alice"]);
});

test("POST /nodes adds a node and DELETE /nodes/:id removes one", async () => {
  const added = await call("POST", "/nodes");
  assert.is(added.status, 201);
  assert.equal(json<{ ring: { nodes: number[] } }>(added).ring.nodes, [0, 1, 2, 3]);
  assert.is((await call("DELETE", "/nodes/0")).status, 200);
  assert.equal(cluster.ring().nodes, [1, 2, 3]);
  assert.match(assertError(await call("DELETE", "/nodes/0"), 400, "LOOM_OUT_OF_RANGE").message, /no node 0/);
  assert.match(assertError(await call("DELETE", "/nodes/zero"), 400, "LOOM_INVALID_ARGUMENT").message, /node must be an integer id/);
});

test("POST /compact compacts every node that is up and names them; a body answers 413, other methods 405", async () => {
  await call("PUT", "/items/compact-me", { body: "v" });
  const compacted = await call("POST", "/compact");
  assert.is(compacted.status, 200);
  assert.equal(json<{ compacted: number[] }>(compacted).compacted.sort(), [...cluster.ring().nodes].sort());
  assert.equal(await valuesOf("compact-me"), ["v"]);
  const refused = await call("GET", "/compact");
  assert.is(refused.status, 405);
  assert.is(refused.headers.allow, "POST");
  assertError(await call("POST", "/compact?now=1"), 400, "LOOM_INVALID_ARGUMENT");
  assert.is((await call("POST", "/compact", { body: "please" })).status, 413, "it takes no body");
});

test("writes with the same context become siblings, answered 300 with JSON", async () => {
  const context = (await call("PUT", "/items/siblings", { body: "first" })).headers["x-loom-context"] as string;
  await call("PUT", "/items/siblings", { body: "bob", headers: { "X-Loom-Context": context } });
  await call("PUT", "/items/siblings", { body: "carol", headers: { "X-Loom-Context": context } });
  const read = await call("GET", "/items/siblings");
  assert.is(read.status, 300);
  assert.is(read.headers["x-loom-siblings"], "2");
  assert.equal(json<{ siblings: { utf8: string }[] }>(read).siblings.map((sibling) => sibling.utf8).sort(), ["bob", "carol"]);
});

test("a write with a read's context resolves its siblings", async () => {
  const context = (await call("PUT", "/items/resolve", { body: "a" })).headers["x-loom-context"] as string;
  await call("PUT", "/items/resolve", { body: "b", headers: { "X-Loom-Context": context } });
  await call("PUT", "/items/resolve", { body: "c", headers: { "X-Loom-Context": context } });
  const seen = (await call("GET", "/items/resolve")).headers["x-loom-context"] as string;
  assert.is((await call("PUT", "/items/resolve", { body: "d", headers: { "X-Loom-Context": seen } })).status, 204);
  const read = await call("GET", "/items/resolve");
  assert.is(read.status, 200);
  assert.is(read.body.toString(), "d");
});

test("siblings that are not UTF-8 come back as base64, however large", async () => {
  const value = new Uint8Array(512 * 1024).fill(0xff);
  await call("PUT", "/items/binary-siblings", { body: value });
  await call("PUT", "/items/binary-siblings", { body: value });
  const read = await call("GET", "/items/binary-siblings");
  assert.is(read.status, 300);
  const { siblings } = json<{ siblings: { base64: string }[] }>(read);
  assert.is(siblings.length, 2);
  assert.equal(new Uint8Array(Buffer.from(siblings[0]!.base64, "base64")), value);
});

test("a delete with a read's context leaves the key absent: 404", async () => {
  await call("PUT", "/items/doomed", { body: "v" });
  const seen = (await call("GET", "/items/doomed")).headers["x-loom-context"] as string;
  assert.is((await call("DELETE", "/items/doomed", { headers: { "X-Loom-Context": seen } })).status, 204);
  const read = await call("GET", "/items/doomed");
  assertError(read, 404, "NOT_FOUND");
  assert.is(read.headers["x-loom-siblings"], "0");
});

test("a key with dot segments is stored under exactly that key", async () => {
  assert.is((await call("PUT", "/items/x/../dots-target", { body: "dots" })).status, 204);
  assert.equal(await valuesOf("x/../dots-target"), ["dots"]);
  assert.equal(await valuesOf("dots-target"), []);
  assert.is((await call("GET", "/items/x/../dots-target")).body.toString(), "dots");
});

test("the keys .. and %2e%2e are reachable, and a key is percent-decoded exactly once", async () => {
  assert.is((await call("PUT", "/items/..", { body: "dot-dot" })).status, 204);
  assert.equal(await valuesOf(".."), ["dot-dot"]);
  assert.is((await call("GET", "/items/%2e%2e")).body.toString(), "dot-dot", "%2e%2e decodes to ..");
  assert.is((await call("PUT", "/items/%252e%252e", { body: "escaped" })).status, 204);
  assert.equal(await valuesOf("%2e%2e"), ["escaped"]);
  assert.equal(await valuesOf(".."), ["dot-dot"]);
});

test("slashes belong to the key, encoded or not", async () => {
  assert.is((await call("PUT", "/items/a/b/c", { body: "slashes" })).status, 204);
  assert.equal(await valuesOf("a/b/c"), ["slashes"]);
  assert.is((await call("GET", "/items/a%2Fb%2fc")).body.toString(), "slashes");
  assert.is((await call("PUT", "/replicas/a/b/c")).status, 405, "the replicas route takes the same key");
});

test("malformed percent-escapes in a key answer 400 with a JSON error", async () => {
  for (const path of ["/items/%E0%A4%A", "/items/100%", "/items/%zz", "/items/%", "/replicas/%4"]) {
    const body = assertError(await call("GET", path), 400, "LOOM_INVALID_ARGUMENT");
    assert.match(body.message, /malformed percent-escape/);
  }
});

test("keys are raw bytes: %FF is the single byte 0xFF, and UTF-8 escapes name the string key", async () => {
  assert.is((await call("PUT", "/items/%FF", { body: "byte" })).status, 204);
  assert.equal(await valuesOf(new Uint8Array([0xff])), ["byte"]);
  assert.is((await call("GET", "/items/%ff")).body.toString(), "byte");
  await cluster.put("café", "crème");
  assert.is((await call("GET", "/items/caf%C3%A9")).body.toString(), "crème");
});

test("the query string is not part of the key", async () => {
  assert.is((await call("PUT", "/items/query-key?w=2", { body: "q" })).status, 204);
  assert.equal(await valuesOf("query-key"), ["q"]);
  assert.equal(await valuesOf("query-key?w=2"), []);
  assert.is((await call("PUT", "/items/query%3Fkey", { body: "escaped" })).status, 204, "an encoded ? belongs to the key");
  assert.equal(await valuesOf("query?key"), ["escaped"]);
});

test("request options in the query are checked like the API's: unknown names and r on a PUT answer 400", async () => {
  assert.match(assertError(await call("PUT", "/items/k?r=1", { body: "v" }), 400, "LOOM_INVALID_ARGUMENT").message, /put failed: unknown option "r"/);
  assert.match(assertError(await call("GET", "/items/k?w=1"), 400, "LOOM_INVALID_ARGUMENT").message, /get failed: unknown option "w"/);
  assert.match(assertError(await call("DELETE", "/items/k?color=red"), 400, "LOOM_INVALID_ARGUMENT").message, /unknown option "color"/);
  assert.match(assertError(await call("PUT", "/items/k?context=abc", { body: "v" }), 400, "LOOM_INVALID_ARGUMENT").message, /X-Loom-Context/);
  assert.match(assertError(await call("GET", "/ring?verbose=1"), 400, "LOOM_INVALID_ARGUMENT").message, /unknown query parameter "verbose"/);
  assert.is((await call("PUT", "/items/k?w=3&timeoutMs=500", { body: "v" })).status, 204);
  assert.is((await call("GET", "/items/k?r=1")).status, 200);
});

test("option values that are not integers or out of range answer 400 with the typed error's message", async () => {
  assert.match(assertError(await call("PUT", "/items/k?w=two", { body: "v" }), 400, "LOOM_INVALID_ARGUMENT").message, /w must be an integer, got "two"/);
  assert.match(assertError(await call("GET", "/items/k?timeoutMs=1.5"), 400, "LOOM_INVALID_ARGUMENT").message, /timeoutMs must be an integer/);
  assert.match(assertError(await call("PUT", "/items/k?w=4", { body: "v" }), 400, "LOOM_OUT_OF_RANGE").message, /w is 4, must be between 1 and n \(3\)/);
  assert.match(assertError(await call("GET", "/items/k?r=1&r=2"), 400, "LOOM_INVALID_ARGUMENT").message, /given twice/);
});

test("a write asking more replicas than are up answers 503 at once with outcome not-applied and Retry-After", async () => {
  const key = "quorum-write";
  await withNodeDown(cluster.preferenceList(key)[2]!, async () => {
    assert.is((await call("PUT", `/items/${key}`, { body: "w2" })).status, 204, "W=2 of the two live replicas");
    const answer = await call("PUT", `/items/${key}?w=3&timeoutMs=60000`, { body: "w3" });
    assert.match(assertError(answer, 503, "LOOM_QUORUM", "not-applied").message, /only 2 of replicas .* are up, 3 needed; nothing was sent/);
    assert.is(answer.headers["retry-after"], "1");
  });
});

test("a write whose replica stops answering misses the quorum in the query: 503 with outcome unknown", async () => {
  const key = "quorum-write-paused";
  await cluster.faults.pause(cluster.preferenceList(key)[2]!, 400);
  const answer = await call("PUT", `/items/${key}?w=3&timeoutMs=100`, { body: "w3" });
  assert.match(assertError(answer, 503, "LOOM_QUORUM", "unknown").message, /2 of 3 replicas acknowledged, 3 required/);
  assert.is(answer.headers["retry-after"], "1");
  await eventually(async () => (await cluster.stats()).nodes.length === 3, { what: "the paused node answers again" });
});

test("a read that misses its quorum answers 503 with outcome not-applied", async () => {
  const key = "quorum-read";
  await cluster.put(key, "v", { w: 3 });
  await withNodeDown(cluster.preferenceList(key)[1]!, async () => {
    assertError(await call("GET", `/items/${key}?r=3&timeoutMs=100`), 503, "LOOM_QUORUM", "not-applied");
  });
});

test("X-Node-Index names the live node that coordinated the request when the key's first replica is down", async () => {
  const key = "coordinated";
  const replicas = cluster.preferenceList(key);
  const first = replicas[0]!;
  await withNodeDown(first, async () => {
    const put = await call("PUT", `/items/${key}`, { body: "v" });
    const read = await call("GET", `/items/${key}`);
    const removed = await call("DELETE", `/items/${key}`, { headers: { "X-Loom-Context": read.headers["x-loom-context"] as string } });
    for (const answer of [put, read, removed]) {
      assert.ok(answer.status < 300, `status ${answer.status}`);
      const named = Number(answer.headers["x-node-index"]);
      assert.is.not(named, first, "not the crashed first replica");
      assert.ok(replicas.includes(named), `node ${named} is a replica of the key (${replicas.join(", ")})`);
      assert.is(named, replicas[1], "the first live replica coordinates");
    }
  });
});

test("a 10 MB PUT answers 413 and closes", async () => {
  const answer = await upload("PUT", "/items/huge", { bytes: 10 * 1024 * 1024, declare: true });
  assert.match(assertError(answer, 413, "LOOM_OUT_OF_RANGE").message, /body is 10485760 bytes, limit is 1048576/);
  assert.is(answer.headers["connection"], "close");
  assert.equal(await valuesOf("huge"), []);
});

test("a chunked PUT over the value limit answers 413 and closes", async () => {
  const answer = await upload("PUT", "/items/huge-chunked", { bytes: 3 * limits.valueBytesMax, declare: false });
  assertError(answer, 413, "LOOM_OUT_OF_RANGE");
  assert.is(answer.headers["connection"], "close");
  assert.equal(await valuesOf("huge-chunked"), []);
});

test("the item body limit is the value limit: exactly that many bytes are stored, one more answers 413", async () => {
  assert.is((await upload("PUT", "/items/at-limit", { bytes: limits.valueBytesMax, declare: true })).status, 204);
  assert.is((await cluster.get("at-limit")).values[0]!.length, limits.valueBytesMax);
  assertError(await upload("PUT", "/items/over-limit", { bytes: limits.valueBytesMax + 1, declare: false }), 413, "LOOM_OUT_OF_RANGE");
});

test("a client that expects 100-continue is refused before it sends an oversized body", async () => {
  const answer = await upload("PUT", "/items/expecting", { bytes: 10 * 1024 * 1024, declare: true, headers: { Expect: "100-continue" } });
  assertError(answer, 413, "LOOM_OUT_OF_RANGE");
});

test("a 3 MB PATCH /config answers 413 and closes; the JSON limit is 64 KiB", async () => {
  const answer = await upload("PATCH", "/config", { bytes: 3 * 1024 * 1024, declare: true });
  assert.match(assertError(answer, 413, "LOOM_OUT_OF_RANGE").message, /configure failed: body is 3145728 bytes, limit is 65536/);
  assert.is(answer.headers["connection"], "close");
  assertError(await upload("PATCH", "/config", { bytes: limits.httpJsonBodyBytesMax + 1, declare: false }), 413, "LOOM_OUT_OF_RANGE");
});

test("after refusing a body the front sends its whole answer, closes its side and reads on until the client closes", async () => {
  // Half-open: this side keeps sending after the front's FIN, as an uploading client does.
  const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  let received = "";
  let failure: Error | undefined;
  socket.on("data", (data: Buffer) => (received += data.toString("latin1")));
  socket.on("error", (error: Error) => (failure = error));
  // The guard timer is cleared once settled: a pending 5 s timer would hold the process open.
  let guard: ReturnType<typeof setTimeout> | undefined;
  const ended = new Promise<void>((resolve, reject) => {
    socket.once("end", () => resolve());
    socket.once("close", () => reject(failure ?? new Error("closed before the front's FIN")));
    guard = setTimeout(() => reject(new Error("the front did not close its side")), REQUEST_TIMEOUT_MS);
  }).finally(() => clearTimeout(guard));
  try {
    socket.write(`PUT /items/raw HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
    socket.write(new Uint8Array(3 * 1024 * 1024)); // part of the body
    await ended; // the front's FIN
    // Still sending: a front that closed outright would reset the connection now.
    socket.write(new Uint8Array(1024 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.is(failure, undefined, "no reset while the client was still sending");
  } finally {
    socket.destroy();
  }
  assert.match(received, /^HTTP\/1\.1 413 /);
  assert.match(received, /\r\nconnection: close\r\n/i);
  assert.match(received, /"error":"LOOM_OUT_OF_RANGE"/);
});

test("an error answered before the body was read closes the connection", async () => {
  const answer = await upload("PUT", "/items/%zz", { bytes: 4 * 1024 * 1024, declare: false });
  assertError(answer, 400, "LOOM_INVALID_ARGUMENT");
  assert.is(answer.headers["connection"], "close");
});

test("HEAD answers the headers GET would, without a body", async () => {
  await call("PUT", "/items/headed", { body: "value" });
  for (const path of ["/items/headed", "/items/never-written", "/ring", "/replicas/headed"]) {
    const get = await call("GET", path);
    const head = await call("HEAD", path);
    assert.is(head.status, get.status, path);
    assert.is(head.body.length, 0, path);
    for (const name of ["content-length", "content-type", "x-node-index", "x-loom-context", "x-loom-siblings"]) {
      assert.is(head.headers[name], get.headers[name], `${path}: ${name}`);
    }
  }
  const stats = await call("HEAD", "/stats");
  assert.is(stats.status, 200);
  assert.ok(Number(stats.headers["content-length"]) > 0);
  assert.is(stats.body.length, 0);
});

test("a known path with a wrong method answers 405 with an Allow header", async () => {
  const cases: [string, string, string][] = [
    ["POST", "/items/k", "GET, HEAD, PUT, DELETE"],
    ["PUT", "/stats", "GET, HEAD"],
    ["DELETE", "/ring", "GET, HEAD"],
    ["GET", "/config", "PATCH"],
    ["GET", "/nodes", "POST"],
    ["GET", "/nodes/1", "DELETE"],
    ["PUT", "/replicas/k", "GET, HEAD"],
  ];
  for (const [method, path, allow] of cases) {
    const answer = await call(method, path);
    assertError(answer, 405, "METHOD_NOT_ALLOWED");
    assert.is(answer.headers["allow"], allow, `${method} ${path}`);
  }
});

test("an unknown path answers 404 with a JSON error", async () => {
  for (const path of ["/", "/nope", "/items", "/stats/more", "/nodes/1/2"]) {
    const answer = await call("GET", path);
    assert.match(assertError(answer, 404, "NOT_FOUND").message, /no resource at/);
    assert.is(answer.headers["connection"], "keep-alive", "an error to a request without a body keeps the connection");
  }
});

test("every legal key round-trips, the longest ones included", async () => {
  const ascii = "k".repeat(limits.keyBytesMax);
  assert.is((await call("PUT", `/items/${ascii}`, { body: "ascii" })).status, 204);
  assert.equal(await valuesOf(ascii), ["ascii"]);
  const bytes = new Uint8Array(limits.keyBytesMax).fill(0xe9);
  const encoded = "%E9".repeat(limits.keyBytesMax); // three characters per byte: 49,152
  assert.is((await call("PUT", `/items/${encoded}`, { body: "bytes" })).status, 204);
  assert.equal(await valuesOf(bytes), ["bytes"]);
  assert.is((await call("GET", `/items/${encoded}`)).body.toString(), "bytes");
});

test("a key over the key limit answers 400", async () => {
  const body = assertError(await call("GET", `/items/${"k".repeat(limits.keyBytesMax + 1)}`), 400, "LOOM_OUT_OF_RANGE");
  assert.match(body.message, /key is 16385 bytes, limit is 16384/);
  assertError(await call("PUT", "/items/", { body: "v" }), 400, "LOOM_OUT_OF_RANGE");
});

test("a request line and headers over the header limit answer 431 with a JSON error", async () => {
  const answer = await call("GET", `/items/${"k".repeat(limits.httpHeaderBytesMax)}`);
  assert.match(assertError(answer, 431, "LOOM_OUT_OF_RANGE").message, /over 65536 bytes/);
  assert.is(answer.headers["connection"], "close");
});

test("a request the HTTP parser refuses answers 400 with a JSON error and closes", async () => {
  const socket = connect(port, "127.0.0.1");
  let received = "";
  socket.on("data", (data: Buffer) => (received += data.toString("latin1")));
  let guard: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((resolve, reject) => {
    socket.once("close", () => resolve());
    socket.once("error", reject);
    guard = setTimeout(() => reject(new Error("no answer")), REQUEST_TIMEOUT_MS);
    socket.write("PUT /items/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nnot-a-chunk-size\r\n");
  }).finally(() => clearTimeout(guard));
  assert.match(received, /^HTTP\/1\.1 400 /);
  assert.match(received, /\r\nconnection: close\r\n/i);
  assert.match(received, /"error":"LOOM_INVALID_ARGUMENT"/);
  assert.match(received, /"outcome":"not-applied"/);
});

test("a malformed context answers 400 with outcome not-applied", async () => {
  assertError(await call("PUT", "/items/k", { body: "v", headers: { "X-Loom-Context": "%%%" } }), 400, "LOOM_INVALID_ARGUMENT");
});

test("a blind PUT that leaves siblings answers 300 with them, and its context replaces them all", async () => {
  assert.is((await call("PUT", "/items/two-writers", { body: "first" })).status, 204);
  const second = await call("PUT", "/items/two-writers", { body: "second" });
  assert.is(second.status, 300);
  assert.equal(JSON.parse(second.body.toString()).siblings, [{ utf8: "second" }, { utf8: "first" }]);
  assert.is(second.headers["x-loom-siblings"], "2");
  const resolved = await call("PUT", "/items/two-writers", { body: "merged", headers: { "X-Loom-Context": second.headers["x-loom-context"] as string } });
  assert.is(resolved.status, 204);
  assert.is((await call("GET", "/items/two-writers")).body.toString(), "merged");
});

test("a key past its sibling limit answers 409", async () => {
  let answer: Answer | undefined;
  for (let write = 0; write < 80; write++) {
    answer = await call("PUT", "/items/crowded", { body: `blind ${write}` });
    if (answer.status !== 204 && answer.status !== 300) break;
  }
  assertError(answer!, 409, "LOOM_TOO_MANY_SIBLINGS");
});

test("every error code answers its documented status", () => {
  const cases: [unknown, number, string | undefined][] = [
    [new LoomTypeError("t"), 400, undefined],
    [new LoomRangeError("r"), 400, undefined],
    [new TooManySiblingsError("put", { siblings: 65, siblingsMax: 64 }), 409, undefined],
    [new QuorumError({ action: "put", acknowledged: 1, required: 2, replicas: 3 }), 503, "1"],
    [new BusyError("busy"), 503, "1"],
    [new ClosedError("closed"), 503, undefined],
    [new RingChangeError("ring"), 503, undefined],
    [new IoError("io", "/x"), 500, undefined],
    [new CorruptionError("bad", "/x", 4), 500, undefined],
    [new Error("plain"), 500, undefined],
    ["a string", 500, undefined],
  ];
  for (const [error, status, retryAfter] of cases) {
    const answer = errorAnswer(error);
    assert.is(answer.status, status, String(error));
    assert.is(answer.headers["Retry-After"], retryAfter, String(error));
    assert.is(answer.headers["X-Loom-Outcome"], answer.body.outcome);
  }
  assert.is(errorAnswer(new QuorumError({ action: "put", acknowledged: 1, required: 2, replicas: 3 })).body.outcome, "unknown");
  assert.is(errorAnswer(new Error("plain")).body.error, "INTERNAL");
  assert.is(errorAnswer(new Error("plain")).body.outcome, "unknown");
});

test("an exception thrown inside a handler still gets an answer: 500 with outcome unknown", async () => {
  const patched = cluster as unknown as Record<string, unknown>;
  patched["ring"] = () => {
    throw new Error("ring exploded");
  };
  patched["stats"] = () => Promise.reject("not even an Error");
  try {
    assert.match(assertError(await call("GET", "/ring"), 500, "INTERNAL", "unknown").message, /ring exploded/);
    assert.match(assertError(await call("GET", "/stats"), 500, "INTERNAL", "unknown").message, /not even an Error/);
  } finally {
    delete patched["ring"];
    delete patched["stats"];
  }
  assert.is((await call("GET", "/ring")).status, 200);
});

test("GET /stats counts the requests each coordinator handled", async () => {
  const stats = json<{ nodes: { requests: { put: number } }[] }>(await call("GET", "/stats"));
  assert.is(stats.nodes.length, 3);
  assert.ok(stats.nodes.reduce((sum, node) => sum + node.requests.put, 0) >= 10, "puts were counted by their coordinators");
  assertError(await call("GET", "/stats?keys=maybe"), 400, "LOOM_INVALID_ARGUMENT");
});

test("GET /ring shares the whole ring among the nodes", async () => {
  const ring = json<{ ownership: Record<string, number> }>(await call("GET", "/ring"));
  assert.ok(Math.abs(Object.values(ring.ownership).reduce((a, b) => a + b, 0) - 1) < 1e-9, "ownership covers the ring");
});

test("PATCH /config applies a valid change and refuses an invalid one with 400", async () => {
  assert.match(assertError(await call("PATCH", "/config", { body: JSON.stringify({ w: 4 }) }), 400, "LOOM_OUT_OF_RANGE").message, /w is 4/);
  assertError(await call("PATCH", "/config", { body: "{not json" }), 400, "LOOM_INVALID_ARGUMENT");
  const changed = await call("PATCH", "/config", { body: JSON.stringify({ w: 3 }) });
  assert.is(json<{ w: number }>(changed).w, 3);
  assert.is(cluster.config.w, 3);
  await call("PATCH", "/config", { body: JSON.stringify({ w: 2 }) });
  assert.is(cluster.config.w, 2);
});

test("GET /replicas/:key lists what each replica holds", async () => {
  await cluster.put("held", "everywhere", { w: 3 });
  const held = json<{ node: number; values: string[] }[]>(await call("GET", "/replicas/held"));
  assert.equal(held.map((replica) => replica.values), [["everywhere"], ["everywhere"], ["everywhere"]]);
  assert.equal(held.map((replica) => replica.node).sort(), cluster.preferenceList("held").sort());
});

test("a closed cluster answers 503 without Retry-After", async () => {
  await cluster.close();
  const answer = await call("GET", "/items/k");
  assertError(answer, 503, "LOOM_CLOSED");
  assert.is(answer.headers["retry-after"], undefined);
});

test.run();
