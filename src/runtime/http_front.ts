/**
 * An HTTP front for a Cluster (node:http, works on Node and Deno), for people and tools that do
 * not embed loomkv:
 *
 *   PUT    /items/:key   body = value; context in the X-Loom-Context header (optional)
 *   GET    /items/:key   200 with the value, 300 with JSON siblings, 404 when absent
 *   DELETE /items/:key   context in X-Loom-Context
 *   GET    /stats        per-node statistics (JSON)
 *   GET    /ring         nodes, virtual nodes, ownership (JSON)
 *   PATCH  /config       JSON body with the settings to change (JSON answer: the configuration)
 *
 * Every item response names the coordinating node and the node count (X-Node-Index,
 * X-Node-Count) and carries the key's context (X-Loom-Context). Errors answer JSON
 * { error: code, message } with 400 (bad input), 503 (quorum not reached) or 500.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Cluster } from "./cluster.ts";

const CONTEXT_HEADER = "x-loom-context";
const BODY_BYTES_MAX = 2 * 1024 * 1024;

export interface HttpFront {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `cluster` on host:port (port 0 picks a free one). Resolves once listening. */
export async function startHttpFront(cluster: Cluster, options: { host?: string; port?: number } = {}): Promise<HttpFront> {
  const server = createServer((request, response) => {
    handle(cluster, request, response).catch((error: unknown) => sendError(response, error));
  });
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

async function handle(cluster: Cluster, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? "/", "http://localhost");
  const item = /^\/items\/(.+)$/.exec(url.pathname);
  if (item) return handleItem(cluster, decodeURIComponent(item[1]!), request, response);
  if (url.pathname === "/stats" && request.method === "GET") {
    return sendJson(response, 200, await cluster.stats({ keys: url.searchParams.get("keys") === "true" }));
  }
  if (url.pathname === "/ring" && request.method === "GET") return sendJson(response, 200, cluster.ring());
  if (url.pathname === "/config" && request.method === "PATCH") {
    const body = await readBody(request);
    let change: unknown;
    try {
      change = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return sendJson(response, 400, { error: "LOOM_INVALID_ARGUMENT", message: "configure failed: body is not JSON" });
    }
    return sendJson(response, 200, await cluster.configure(change as never));
  }
  if (url.pathname === "/nodes" && request.method === "POST") {
    const node = await cluster.addNode();
    return sendJson(response, 201, { node, ring: cluster.ring() });
  }
  const member = /^\/nodes\/([^/]+)$/.exec(url.pathname);
  if (member && request.method === "DELETE") {
    const node = Number(member[1]);
    await cluster.removeNode(Number.isInteger(node) ? node : (member[1] as never));
    return sendJson(response, 200, { node, ring: cluster.ring() });
  }
  const replicas = /^\/replicas\/(.+)$/.exec(url.pathname);
  if (replicas && request.method === "GET") {
    const decoder = new TextDecoder();
    const held = await cluster.replicaValues(decodeURIComponent(replicas[1]!));
    return sendJson(response, 200, held.map(({ node, values }) => ({ node, values: values?.map((value) => decoder.decode(value)) ?? null })));
  }
  sendJson(response, 404, { error: "NOT_FOUND", message: `no route for ${request.method} ${url.pathname}` });
}

async function handleItem(cluster: Cluster, key: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const contextHeader = request.headers[CONTEXT_HEADER];
  const context = typeof contextHeader === "string" ? contextHeader : undefined;
  const route = { "X-Node-Index": String(cluster.preferenceList(key)[0]), "X-Node-Count": String(cluster.config.nodes) };
  if (request.method === "PUT") {
    const result = await cluster.put(key, await readBody(request), context === undefined ? {} : { context });
    response.writeHead(204, { ...route, "X-Loom-Context": result.context }).end();
    return;
  }
  if (request.method === "DELETE") {
    const result = await cluster.delete(key, context === undefined ? {} : { context });
    response.writeHead(204, { ...route, "X-Loom-Context": result.context }).end();
    return;
  }
  if (request.method !== "GET") return sendJson(response, 405, { error: "METHOD_NOT_ALLOWED", message: `${request.method} /items/:key` });
  const { values, context: readContext } = await cluster.get(key);
  const headers = { ...route, "X-Loom-Context": readContext, "X-Loom-Siblings": String(values.length) };
  if (values.length === 0) return sendJson(response, 404, { error: "NOT_FOUND", message: `key ${key} is absent` }, headers);
  if (values.length === 1) {
    response.writeHead(200, { ...headers, "Content-Type": "application/octet-stream" }).end(values[0]);
    return;
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const siblings = values.map((value) => {
    try {
      return { utf8: decoder.decode(value) };
    } catch {
      return { base64: btoa(String.fromCharCode(...value)) };
    }
  });
  sendJson(response, 300, { siblings }, headers);
}

function readBody(request: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    request.on("data", (chunk: Uint8Array) => {
      bytes += chunk.length;
      if (bytes > BODY_BYTES_MAX) {
        reject(Object.assign(new RangeError(`request failed: body is over ${BODY_BYTES_MAX} bytes`), { code: "LOOM_OUT_OF_RANGE" }));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => {
      const body = new Uint8Array(bytes);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      resolve(body);
    });
    request.on("error", reject);
  });
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...headers, "Content-Type": "application/json" }).end(JSON.stringify(body));
}

function sendError(response: ServerResponse, error: unknown): void {
  const { code, message } = error as { code?: string; message?: string };
  const status = code === "LOOM_QUORUM" ? 503 : code?.startsWith("LOOM_") && code !== "LOOM_IO" && code !== "LOOM_CORRUPTION" ? 400 : 500;
  if (response.headersSent) return void response.destroy();
  sendJson(response, status, { error: code ?? "INTERNAL", message: message ?? String(error) });
}
