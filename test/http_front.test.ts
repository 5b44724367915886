/** The HTTP front over a real cluster: items with contexts and siblings, stats, ring, config. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { createCluster } from "../src/runtime/cluster.ts";
import { startHttpFront } from "../src/runtime/http_front.ts";

test("items, siblings, contexts, stats, ring and live config work over HTTP with routing headers", async () => {
  const cluster = await createCluster({ nodes: 3, vnodesPerNode: 16 });
  const front = await startHttpFront(cluster);
  try {
    const put = await fetch(`${front.url}/items/user%3A1`, { method: "PUT", body: "alice" });
    assert.is(put.status, 204);
    assert.is(put.headers.get("x-node-index"), String(cluster.preferenceList("user:1")[0]));
    assert.is(put.headers.get("x-node-count"), "3");
    const context = put.headers.get("x-loom-context")!;
    await (await fetch(`${front.url}/items/user%3A1`, { method: "PUT", body: "bob", headers: { "X-Loom-Context": context } })).arrayBuffer();
    await (await fetch(`${front.url}/items/user%3A1`, { method: "PUT", body: "carol", headers: { "X-Loom-Context": context } })).arrayBuffer();
    const siblings = await fetch(`${front.url}/items/user%3A1`);
    assert.is(siblings.status, 300);
    assert.equal(((await siblings.json()) as { siblings: { utf8: string }[] }).siblings.map((s) => s.utf8).sort(), ["bob", "carol"]);
    const resolved = await fetch(`${front.url}/items/user%3A1`, {
      method: "PUT",
      body: "dave",
      headers: { "X-Loom-Context": siblings.headers.get("x-loom-context")! },
    });
    assert.is(resolved.status, 204);
    const read = await fetch(`${front.url}/items/user%3A1`);
    assert.is(read.status, 200);
    assert.is(await read.text(), "dave");
    const deleted = await fetch(`${front.url}/items/user%3A1`, { method: "DELETE", headers: { "X-Loom-Context": read.headers.get("x-loom-context")! } });
    assert.is(deleted.status, 204);
    const absent = await fetch(`${front.url}/items/user%3A1`);
    assert.is(absent.status, 404);
    await absent.arrayBuffer();

    const stats = (await (await fetch(`${front.url}/stats`)).json()) as { nodes: { requests: { put: number } }[] };
    assert.is(stats.nodes.length, 3);
    assert.ok(stats.nodes.reduce((sum, node) => sum + node.requests.put, 0) >= 5, "puts were counted by their coordinators");
    const ring = (await (await fetch(`${front.url}/ring`)).json()) as { ownership: Record<string, number> };
    assert.ok(Math.abs(Object.values(ring.ownership).reduce((a, b) => a + b, 0) - 1) < 1e-9, "ownership covers the ring");

    const refused = await fetch(`${front.url}/config`, { method: "PATCH", body: JSON.stringify({ w: 4 }) });
    assert.is(refused.status, 400);
    assert.match(((await refused.json()) as { message: string }).message, /w is 4/);
    const changed = await fetch(`${front.url}/config`, { method: "PATCH", body: JSON.stringify({ w: 3 }) });
    assert.is(((await changed.json()) as { w: number }).w, 3);
    assert.is(cluster.config.w, 3);
    const badContext = await fetch(`${front.url}/items/k`, { method: "PUT", body: "v", headers: { "X-Loom-Context": "%%%" } });
    assert.is(badContext.status, 400);
    assert.is(((await badContext.json()) as { error: string }).error, "LOOM_INVALID_ARGUMENT");

    await (await fetch(`${front.url}/items/moving`, { method: "PUT", body: "along" })).arrayBuffer();
    await (await fetch(`${front.url}/config`, { method: "PATCH", body: JSON.stringify({ w: 2 }) })).json();
    const added = await fetch(`${front.url}/nodes`, { method: "POST" });
    assert.is(added.status, 201);
    assert.equal(((await added.json()) as { ring: { nodes: number[] } }).ring.nodes, [0, 1, 2, 3]);
    const removed = await fetch(`${front.url}/nodes/0`, { method: "DELETE" });
    assert.is(removed.status, 200);
    assert.equal(cluster.ring().nodes, [1, 2, 3]);
    const unknown = await fetch(`${front.url}/nodes/0`, { method: "DELETE" });
    assert.is(unknown.status, 400);
    assert.match(((await unknown.json()) as { message: string }).message, /no node 0/);
    const held = (await (await fetch(`${front.url}/replicas/moving`)).json()) as { node: number; values: string[] }[];
    assert.equal(held.map((replica) => replica.values), [["along"], ["along"], ["along"]]);
    assert.equal(held.map((replica) => replica.node).sort(), [1, 2, 3]);
  } finally {
    await front.close();
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test.run();
