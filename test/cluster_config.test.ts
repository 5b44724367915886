import { test } from "uvu";
import * as assert from "uvu/assert";
import { applyConfigChange, clusterConfigDefaults, resolveClusterConfig } from "../src/cluster/cluster_config.ts";

function refused(change: unknown, pattern: RegExp, code: string): void {
  try {
    applyConfigChange("configure", clusterConfigDefaults, change);
    assert.unreachable(`expected ${JSON.stringify(change)} to be refused`);
  } catch (error) {
    assert.is((error as { code?: string }).code, code, String(error));
    assert.match(String(error), pattern);
  }
}

test("no options give the documented defaults", () => {
  assert.equal(resolveClusterConfig(), clusterConfigDefaults);
  assert.is(resolveClusterConfig().w + resolveClusterConfig().r > resolveClusterConfig().n, true);
});

test("a partial change keeps every other setting, nested ones included", () => {
  const next = applyConfigChange("configure", clusterConfigDefaults, { w: 3, gossip: { failAfterMs: 500 } });
  assert.is(next.w, 3);
  assert.is(next.gossip.failAfterMs, 500);
  assert.is(next.gossip.intervalMs, clusterConfigDefaults.gossip.intervalMs);
  assert.equal(next.antiEntropy, clusterConfigDefaults.antiEntropy);
  assert.is(clusterConfigDefaults.w, 2, "the current configuration is not mutated");
});

test("impossible quorums are refused naming the fields", () => {
  refused({ w: 4 }, /w is 4, must be at most n \(3\)/, "LOOM_OUT_OF_RANGE");
  refused({ r: 4 }, /r is 4, must be at most n \(3\)/, "LOOM_OUT_OF_RANGE");
  refused({ n: 6 }, /n is 6 but the cluster has 5 nodes/, "LOOM_OUT_OF_RANGE");
});

test("a change is validated as a whole, so lowering n below w fails even though n alone is valid", () => {
  refused({ n: 1 }, /w is 2, must be at most n \(1\)/, "LOOM_OUT_OF_RANGE");
  assert.is(applyConfigChange("configure", clusterConfigDefaults, { n: 1, w: 1, r: 1 }).n, 1);
});

test("wrong types, unknown settings and out-of-range values get typed errors", () => {
  refused({ w: "2" }, /w must be an integer, got "2"/, "LOOM_INVALID_ARGUMENT");
  refused({ quorum: 2 }, /unknown setting quorum/, "LOOM_INVALID_ARGUMENT");
  refused({ gossip: { failAfter: 5 } }, /unknown setting gossip\.failAfter/, "LOOM_INVALID_ARGUMENT");
  refused(null, /configuration must be an object/, "LOOM_INVALID_ARGUMENT");
  refused({ vnodesPerNode: 0 }, /vnodesPerNode is 0/, "LOOM_OUT_OF_RANGE");
  refused({ vnodesPerNode: 5000 }, /vnodesPerNode is 5000/, "LOOM_OUT_OF_RANGE");
  refused({ pruneThreshold: 0 }, /pruneThreshold is 0/, "LOOM_OUT_OF_RANGE");
  refused({ antiEntropy: { buckets: 1000 } }, /must be a power of two/, "LOOM_OUT_OF_RANGE");
});

test("gossip timeouts must leave room for a few missed heartbeats and outlast the failure time", () => {
  refused({ gossip: { intervalMs: 600 } }, /failAfterMs is 1000, must be at least twice gossip\.intervalMs/, "LOOM_OUT_OF_RANGE");
  refused({ gossip: { cleanupAfterMs: 900 } }, /cleanupAfterMs \(900\) must exceed gossip\.failAfterMs/, "LOOM_OUT_OF_RANGE");
});

test.run();
