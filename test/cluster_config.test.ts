import { test } from "uvu";
import * as assert from "uvu/assert";
import { applyConfigChange, clusterConfigDefaults, resolveClusterConfig } from "../src/cluster/cluster_config.ts";
import { rejectsWithCode } from "./support/assertions.ts";

/** The call that applies `change` to the defaults, for rejectsWithCode. */
const configuring = (change: unknown) => () => applyConfigChange("configure", clusterConfigDefaults, change);

test("no options give the documented defaults", async () => {
  assert.equal(resolveClusterConfig(), clusterConfigDefaults);
  assert.is(resolveClusterConfig().w + resolveClusterConfig().r > resolveClusterConfig().n, true);
});

test("a partial change keeps every other setting, nested ones included", async () => {
  const next = applyConfigChange("configure", clusterConfigDefaults, { w: 3, gossip: { failAfterMs: 500 } });
  assert.is(next.w, 3);
  assert.is(next.gossip.failAfterMs, 500);
  assert.is(next.gossip.intervalMs, clusterConfigDefaults.gossip.intervalMs);
  assert.equal(next.antiEntropy, clusterConfigDefaults.antiEntropy);
  assert.is(clusterConfigDefaults.w, 2, "the current configuration is not mutated");
});

test("impossible quorums are refused naming the fields", async () => {
  await rejectsWithCode(configuring({ w: 4 }), "LOOM_OUT_OF_RANGE", /w is 4, must be at most n \(3\)/);
  await rejectsWithCode(configuring({ r: 4 }), "LOOM_OUT_OF_RANGE", /r is 4, must be at most n \(3\)/);
  await rejectsWithCode(configuring({ n: 6 }), "LOOM_OUT_OF_RANGE", /n is 6 but the cluster has 5 nodes/);
});

test("a change is validated as a whole, so lowering n below w fails even though n alone is valid", async () => {
  await rejectsWithCode(configuring({ n: 1 }), "LOOM_OUT_OF_RANGE", /w is 2, must be at most n \(1\)/);
  assert.is(applyConfigChange("configure", clusterConfigDefaults, { n: 1, w: 1, r: 1 }).n, 1);
});

test("wrong types, unknown settings and out-of-range values get typed errors", async () => {
  await rejectsWithCode(configuring({ w: "2" }), "LOOM_INVALID_ARGUMENT", /w must be an integer, got "2"/);
  await rejectsWithCode(configuring({ quorum: 2 }), "LOOM_INVALID_ARGUMENT", /unknown setting quorum/);
  await rejectsWithCode(configuring({ gossip: { failAfter: 5 } }), "LOOM_INVALID_ARGUMENT", /unknown setting gossip\.failAfter/);
  await rejectsWithCode(configuring(null), "LOOM_INVALID_ARGUMENT", /configuration must be an object/);
  await rejectsWithCode(configuring({ vnodesPerNode: 0 }), "LOOM_OUT_OF_RANGE", /vnodesPerNode is 0/);
  await rejectsWithCode(configuring({ vnodesPerNode: 5000 }), "LOOM_OUT_OF_RANGE", /vnodesPerNode is 5000/);
  await rejectsWithCode(configuring({ pruneThreshold: 0 }), "LOOM_OUT_OF_RANGE", /pruneThreshold is 0/);
  await rejectsWithCode(configuring({ antiEntropy: { buckets: 1000 } }), "LOOM_OUT_OF_RANGE", /must be a power of two/);
  await rejectsWithCode(configuring({ readFanout: "some" }), "LOOM_INVALID_ARGUMENT", /readFanout must be "quorum" or "all", got "some"/);
  assert.is(applyConfigChange("configure", clusterConfigDefaults, { readFanout: "all" }).readFanout, "all");
});

test("gossip timeouts must leave room for a few missed heartbeats and outlast the failure time", async () => {
  await rejectsWithCode(configuring({ gossip: { intervalMs: 600 } }), "LOOM_OUT_OF_RANGE", /failAfterMs is 1000, must be at least twice gossip\.intervalMs/);
  await rejectsWithCode(configuring({ gossip: { cleanupAfterMs: 900 } }), "LOOM_OUT_OF_RANGE", /cleanupAfterMs \(900\) must exceed gossip\.failAfterMs/);
});

test.run();
