/**
 * `npm start`: a demo cluster (5 node workers on a temporary directory, default settings) behind
 * the HTTP front on 127.0.0.1 (PORT, default 7070). Ctrl-C closes the cluster and removes the
 * directory. With --smoke it runs a few requests against itself and exits (used by CI-like checks).
 */
import { rmSync } from "node:fs";
import process from "node:process";
import { createCluster } from "../src/runtime/cluster.ts";
import { startHttpFront } from "../src/runtime/http_front.ts";

const smoke = process.argv.includes("--smoke");
const cluster = await createCluster();
const front = await startHttpFront(cluster, { port: smoke ? 0 : Number(process.env["PORT"] ?? 7070) });
console.log(`loomkv: ${cluster.config.nodes} nodes (N=${cluster.config.n} W=${cluster.config.w} R=${cluster.config.r}), data in ${cluster.dataDir}`);
console.log(`HTTP front on ${front.url}. Try:
  curl -i -X PUT --data 'alice' ${front.url}/items/user:1
  curl -i ${front.url}/items/user:1
  curl -I ${front.url}/items/user:1                                  # HEAD: headers only
  curl -i -X PUT -H 'X-Loom-Context: <context from the GET>' --data 'bob' ${front.url}/items/user:1
  curl -i -X DELETE -H 'X-Loom-Context: <context>' ${front.url}/items/user:1
  curl -i -X PUT --data 'v' '${front.url}/items/user:1?w=3&timeoutMs=500'   # request options in the query
  curl -i '${front.url}/items/user:1?r=1'
  curl -i -X PUT --data 'raw' ${front.url}/items/%FF%00              # keys are raw bytes, percent-decoded once
  curl -i -X PUT --data 'v' --path-as-is ${front.url}/items/a/../b   # the key is "a/../b"
  curl -s ${front.url}/stats
  curl -s ${front.url}/ring
  curl -s -X PATCH --data '{"w":3}' ${front.url}/config
  curl -s -X PATCH --data '{"vnodesPerNode":64}' ${front.url}/config   # moves keys live
  curl -s -X POST ${front.url}/nodes                                   # a node joins
  curl -s -X DELETE ${front.url}/nodes/0                               # node 0 leaves
  curl -s -X POST ${front.url}/compact                                 # major compaction on every node
  curl -s ${front.url}/replicas/user:1`);

async function shutdown(): Promise<void> {
  await front.close();
  await cluster.close();
  rmSync(cluster.dataDir, { recursive: true, force: true });
}

if (smoke) {
  const put = await fetch(`${front.url}/items/user:1`, { method: "PUT", body: "alice" });
  const get = await fetch(`${front.url}/items/user:1`);
  console.log(`smoke: PUT ${put.status}, GET ${get.status} "${await get.text()}" from node ${get.headers.get("x-node-index")} of ${get.headers.get("x-node-count")}`);
  await shutdown();
} else {
  process.once("SIGINT", () => void shutdown().then(() => process.exit(0)));
  process.once("SIGTERM", () => void shutdown().then(() => process.exit(0)));
}
