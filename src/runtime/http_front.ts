/**
 * An HTTP front for a Cluster (node:http, works on Node and Deno), for people and tools that do
 * not embed loomkv:
 *
 *   PUT    /items/:key     body = value (at most limits.valueBytesMax); context in X-Loom-Context (optional)
 *   GET    /items/:key     200 with the value, 300 with JSON siblings, 404 when absent
 *   DELETE /items/:key     context in X-Loom-Context
 *   GET    /stats          per-node statistics (JSON); ?keys=true also counts keys
 *   GET    /ring           nodes, virtual nodes, ownership (JSON)
 *   PATCH  /config         JSON body (at most limits.httpJsonBodyBytesMax) with the settings to change; answers the configuration
 *   POST   /nodes          a node joins (201)
 *   DELETE /nodes/:id      the node leaves
 *   GET    /replicas/:key  what each replica of the key holds (JSON)
 *
 * HEAD is answered wherever GET is, with the same headers and no body.
 *
 * Keys come from the request target as sent: no dot-segment or slash normalisation; everything
 * after `/items/` is the key, percent-decoded once into raw bytes (http_request_target.ts). The
 * query string carries request options, `?w=2&timeoutMs=500` on writes and `?r=1` on reads,
 * checked as the API checks them.
 *
 * Item answers name the node that coordinated the request (X-Node-Index) and the node count
 * (X-Node-Count), and carry the key's context (X-Loom-Context); a read also X-Loom-Siblings.
 *
 * Statuses (http_status.ts has the table by error code):
 *   200, 201, 204   success (204 for PUT and DELETE that leave no sibling); 300 siblings as JSON
 *                   (GET; and PUT or DELETE when concurrent writes left siblings: X-Loom-Context
 *                   covers them all)
 *   400             bad input: malformed key escape, query option, context, JSON, setting; a key
 *                   empty or over the key limit; a request the HTTP parser refused
 *   404             absent key (with the read's headers) or unknown path
 *   405             known path, other method (Allow lists the methods)
 *   408             request line and headers too slow to arrive
 *   409             too many siblings: resolve them with a context first
 *   413             body over its limit
 *   431             request line plus headers over limits.httpHeaderBytesMax
 *   503             quorum not reached, cluster busy (both with Retry-After: 1); cluster closed;
 *                   a ring change refused for a node down
 *   500             storage failure (LOOM_IO, LOOM_CORRUPTION, LOOM_LOCKED) or anything unexpected
 * Every failure answers JSON `{ error, message, outcome }` and an X-Loom-Outcome header; outcome
 * "not-applied" means nothing changed, "unknown" that a write may have reached some replicas.
 * 408, 413, 431 and parser refusals close the connection (`Connection: close`), as does any error
 * answered before the request's body was read. Whatever a handler throws, the request gets an
 * answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { toKeyBytes } from "../storage/store_input.ts";
import { utf8Encode } from "../util/bytes.ts";
import { LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { Cluster, RequestOptions, WriteOptions } from "./cluster.ts";
import { lingerOnClose, lingeringClose, markWaitingForContinue, readBody } from "./http_body.ts";
import {
  matchRoute,
  parseQuery,
  percentDecode,
  percentDecodeText,
  refuseUnknownParameters,
  requestOptions,
  splitTarget,
  type Route,
} from "./http_request_target.ts";
import { HttpError, errorAnswer } from "./http_status.ts";

const CONTEXT_HEADER = "x-loom-context";

export interface HttpFront {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

/** One request and its answer; `head` when the method is HEAD (headers only). */
interface Exchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly head: boolean;
}

/**
 * Serves `cluster` on host:port (port 0 picks a free one). Resolves once listening. Requests
 * whose request line and headers pass limits.httpHeaderBytesMax are answered 431.
 */
export async function startHttpFront(cluster: Cluster, options: { host?: string; port?: number } = {}): Promise<HttpFront> {
  const server = createServer({ maxHeaderSize: limits.httpHeaderBytesMax });
  /** The answer in progress on each connection, so that a parse error mid-request does not write over it. */
  const answering = new WeakMap<Duplex, ServerResponse>();
  const onRequest = (request: IncomingMessage, response: ServerResponse) => {
    answering.set(request.socket, response);
    response.once("close", () => {
      if (answering.get(request.socket) === response) answering.delete(request.socket);
    });
    const exchange: Exchange = { request, response, head: request.method === "HEAD" };
    handle(cluster, exchange)
      .catch((error: unknown) => sendError(exchange, error))
      .catch(() => response.destroy());
  };
  server.on("request", onRequest);
  server.on("checkContinue", (request: IncomingMessage, response: ServerResponse) => {
    markWaitingForContinue(request);
    onRequest(request, response);
  });
  server.on("clientError", (error: Error & { code?: string }, socket: Duplex) => answerClientError(error, socket, answering.get(socket)));
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function handle(cluster: Cluster, exchange: Exchange): Promise<void> {
  const { request } = exchange;
  const method = request.method ?? "GET";
  const { path, query } = splitTarget(request.url ?? "/");
  const route = matchRoute(path);
  if (!route) throw new HttpError({ status: 404, code: "NOT_FOUND", message: `${method} failed: no resource at ${shorten(path)}` });
  if (!route.allow.includes(method)) {
    throw new HttpError({
      status: 405,
      code: "METHOD_NOT_ALLOWED",
      message: `${method} failed: ${route.pattern} answers ${route.allow.join(", ")}`,
      headers: { Allow: route.allow.join(", ") },
    });
  }
  switch (route.name) {
    case "items":
      return serveItem(cluster, exchange, route, query);
    case "replicas":
      return serveReplicas(cluster, exchange, route, query);
    case "stats": {
      const parameters = parseQuery("stats", query);
      refuseUnknownParameters("stats", parameters, ["keys"]);
      const keys = parameters.get("keys") ?? "false";
      if (keys !== "true" && keys !== "false") {
        throw new LoomTypeError(`stats failed: keys must be true or false, got ${JSON.stringify(keys)}`);
      }
      return sendJson(exchange, 200, await cluster.stats({ keys: keys === "true" }));
    }
    case "ring":
      refuseUnknownParameters("ring", parseQuery("ring", query), []);
      return sendJson(exchange, 200, cluster.ring());
    case "config":
      return serveConfigure(cluster, exchange, query);
    case "compact": {
      refuseUnknownParameters("compact", parseQuery("compact", query), []);
      await readBody(request, exchange.response, { action: "compact", bytesMax: 0 }); // takes no body
      return sendJson(exchange, 200, { compacted: await cluster.compact() });
    }
    case "nodes": {
      refuseUnknownParameters("add node", parseQuery("add node", query), []);
      await readBody(request, exchange.response, { action: "add node", bytesMax: 0 }); // takes no body
      const node = await cluster.addNode();
      return sendJson(exchange, 201, { node, ring: cluster.ring() });
    }
    case "node": {
      refuseUnknownParameters("remove node", parseQuery("remove node", query), []);
      const id = percentDecodeText("remove node", "the node id", route.parameter);
      // A non-numeric id goes to the API as it is, which refuses it with its own message.
      const node = /^[0-9]+$/.test(id) ? Number(id) : id;
      await cluster.removeNode(node as number);
      return sendJson(exchange, 200, { node, ring: cluster.ring() });
    }
  }
}

/** PUT, GET, HEAD and DELETE of /items/:key. */
async function serveItem(cluster: Cluster, exchange: Exchange, route: Route, query: string): Promise<void> {
  const { request } = exchange;
  const action = request.method === "PUT" ? "put" : request.method === "DELETE" ? "delete" : "get";
  // The key and options are checked before the body is read: a bad request does not upload first.
  const key = toKeyBytes(action, percentDecode(action, "key", route.parameter));
  const options = requestOptions(action, parseQuery(action, query));
  if (action === "get") return serveRead(cluster, exchange, key, options);
  const contextHeader = request.headers[CONTEXT_HEADER];
  // Options the API does not take pass through as strings: the API refuses them.
  const writeOptions = (typeof contextHeader === "string" ? { ...options, context: contextHeader } : options) as WriteOptions;
  const result =
    action === "put"
      ? await cluster.put(key, await readBody(request, exchange.response, { action, bytesMax: limits.valueBytesMax }), writeOptions)
      : await cluster.delete(key, writeOptions);
  const headers = { ...routing(cluster, result.coordinator), "X-Loom-Context": result.context, "X-Loom-Siblings": String(result.values.length) };
  // The context covers every value the coordinator now holds: when the write left siblings, the
  // answer shows them (300, as a read would), so the client sees what its next write replaces.
  const alone = action === "put" ? result.values.length === 1 : result.values.length === 0;
  if (alone) return send(exchange, { status: 204, headers });
  sendJson(exchange, 300, { siblings: result.values.map(siblingJson) }, headers);
}

async function serveRead(cluster: Cluster, exchange: Exchange, key: Uint8Array, options: Record<string, unknown>): Promise<void> {
  const { values, context, coordinator } = await cluster.get(key, options as RequestOptions);
  const headers = { ...routing(cluster, coordinator), "X-Loom-Context": context, "X-Loom-Siblings": String(values.length) };
  if (values.length === 0) {
    const body = { error: "NOT_FOUND", message: "get: key is absent", outcome: "not-applied" };
    return sendJson(exchange, 404, body, { ...headers, "X-Loom-Outcome": body.outcome });
  }
  if (values.length === 1) {
    return send(exchange, { status: 200, headers: { ...headers, "Content-Type": "application/octet-stream" }, body: values[0]! });
  }
  sendJson(exchange, 300, { siblings: values.map(siblingJson) }, headers);
}

/** A sibling as JSON: `{ utf8 }` when the value is UTF-8 text, else `{ base64 }`. */
function siblingJson(value: Uint8Array): { utf8: string } | { base64: string } {
  try {
    return { utf8: strictUtf8.decode(value) };
  } catch {
    return { base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

async function serveReplicas(cluster: Cluster, exchange: Exchange, route: Route, query: string): Promise<void> {
  refuseUnknownParameters("replica values", parseQuery("replica values", query), []);
  const key = toKeyBytes("replica values", percentDecode("replica values", "key", route.parameter));
  const held = await cluster.replicaValues(key);
  const decoder = new TextDecoder();
  sendJson(
    exchange,
    200,
    held.map(({ node, values }) => ({ node, values: values?.map((value) => decoder.decode(value)) ?? null })),
  );
}

async function serveConfigure(cluster: Cluster, exchange: Exchange, query: string): Promise<void> {
  refuseUnknownParameters("configure", parseQuery("configure", query), []);
  const body = await readBody(exchange.request, exchange.response, { action: "configure", bytesMax: limits.httpJsonBodyBytesMax });
  let change: unknown;
  try {
    change = JSON.parse(new TextDecoder().decode(body));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new LoomTypeError(`configure failed: body is not JSON (${detail})`);
  }
  // configure() validates the change: names, types, ranges.
  sendJson(exchange, 200, await cluster.configure(change as never));
}

function routing(cluster: Cluster, coordinator: number): Record<string, string> {
  return { "X-Node-Index": String(coordinator), "X-Node-Count": String(cluster.config.nodes) };
}

/** `path` cut short for a message: a path can be as long as the header limit. */
function shorten(path: string): string {
  return path.length <= 100 ? path : `${path.slice(0, 100)}... (${path.length} characters)`;
}

/**
 * Writes the whole answer at once. Content-Length is always set (but never on a 204), so that a
 * HEAD answer carries the headers its GET would. `close` answers with `Connection: close` and
 * closes with a lingering close (http_body.ts).
 */
function send(
  exchange: Exchange,
  answer: { status: number; headers: Record<string, string>; body?: Uint8Array; close?: boolean },
): void {
  const { request, response, head } = exchange;
  const headers: Record<string, string> = { ...answer.headers };
  if (answer.status !== 204) headers["Content-Length"] = String(answer.body?.length ?? 0);
  if (answer.close) {
    headers["Connection"] = "close";
    lingerOnClose(request.socket);
  }
  response.writeHead(answer.status, headers);
  if (head || answer.body === undefined) response.end();
  else response.end(answer.body);
}

function sendJson(exchange: Exchange, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = utf8Encode(JSON.stringify(value));
  send(exchange, { status, headers: { ...headers, "Content-Type": "application/json" }, body });
}

/**
 * Answers `error` (http_status.ts). An answer whose request body was not read to the end closes
 * the connection: the rest of the body is not worth reading. When the answer had already started,
 * nothing can be said any more: the connection is destroyed.
 */
function sendError(exchange: Exchange, error: unknown): void {
  const { request, response } = exchange;
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const answer = errorAnswer(error);
  const body = utf8Encode(JSON.stringify(answer.body));
  const headers = { ...answer.headers, "Content-Type": "application/json" };
  send(exchange, { status: answer.status, headers, body, close: answer.close || !request.complete });
}

/**
 * Answers a request the HTTP parser refused: 431 when the request line and headers pass
 * limits.httpHeaderBytesMax, 408 when they were too slow to arrive, 400 otherwise; JSON like every
 * other error, then a lingering close. A connection the client reset, or whose answer had begun,
 * is destroyed.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex, inProgress: ServerResponse | undefined): void {
  if (error.code === "ECONNRESET" || !socket.writable || inProgress?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, reason, message] =
    error.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", `request failed: request line and headers are over ${limits.httpHeaderBytesMax} bytes`]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT" || error.code === "HPE_HEADERS_TIMEOUT"
        ? [408, "Request Timeout", "request failed: the request did not arrive in time"]
        : [400, "Bad Request", `request failed: malformed HTTP request (${error.code ?? error.message})`];
  const code = status === 431 ? "LOOM_OUT_OF_RANGE" : status === 408 ? "REQUEST_TIMEOUT" : "LOOM_INVALID_ARGUMENT";
  const body = JSON.stringify({ error: code, message, outcome: "not-applied" });
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "X-Loom-Outcome: not-applied",
    "Connection: close",
  ];
  socket.write(`${head.join("\r\n")}\r\n\r\n${body}`);
  lingeringClose(socket);
}
