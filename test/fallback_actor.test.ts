/**
 * Writes a node coordinates as a fallback (every primary of the key down) are stamped by a fallback
 * actor, never the node's own; once a hint that actor stamped is handed back and dropped, the node
 * stamps its next fallback write with a fresh one. A context names an actor's events of a key up to
 * a counter, so an actor must keep every version it stamped; the node's own store does, hints leave.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HintStore } from "../src/handoff/hint_store.ts";
import { createSeedCluster, settle } from "../src/sim/settle.ts";
import type { SimCluster } from "../src/sim/sim_cluster.ts";
import { decodeVersion } from "../src/version/version_codec.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The actors of the dots `node` holds for `key` in its hints, for any target. */
function hintedActors(sim: SimCluster, node: number, key: string): number[] {
  const hints = new HintStore(sim.host.lifeOf(node)!.hintStore);
  return hints.targets().flatMap((target) => hints.get(target, encoder.encode(key)).map((version) => decodeVersion(version.version).dot.actor));
}

test("a fallback stamps with a fallback actor, and retires it once a hint it stamped is handed back", async () => {
  const sim = await createSeedCluster({ seed: 7 });
  const key = "fallback-key";
  const primaries = sim.core.preferenceList(key);
  for (const node of primaries) sim.faults.crash(node);
  const first = await sim.run(sim.core.put(key, "one", {}));
  const fallback = first.coordinator;
  assert.not.ok(primaries.includes(fallback), "a fallback coordinated");
  const own = sim.host.lifeOf(fallback)!.core.actor;
  const [firstActor] = hintedActors(sim, fallback, key);
  assert.ok(firstActor !== undefined && firstActor !== own, `stamped by a fallback actor (${firstActor}), not the node's own (${own})`);

  for (const node of primaries) await sim.run(sim.faults.restart(node));
  await settle(sim, { convergence: false });
  assert.equal(hintedActors(sim, fallback, key), [], "the hint was handed back");

  for (const node of primaries) sim.faults.crash(node);
  const second = await sim.run(sim.core.put(key, "two", { context: first.context }));
  assert.is(second.coordinator, fallback);
  const [secondActor] = hintedActors(sim, fallback, key);
  assert.ok(secondActor !== undefined && secondActor !== firstActor && secondActor !== own, `a fresh fallback actor (${secondActor}) after ${firstActor} was retired`);

  for (const node of primaries) await sim.run(sim.faults.restart(node));
  await settle(sim, { convergence: false });
  const read = await sim.run(sim.core.get(key));
  assert.equal(read.values.map((value) => decoder.decode(value)), ["two"], "the second write superseded the first it was given the context of");
});

test.run();
