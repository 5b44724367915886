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

test("a node that drops keys its actor stamped after a ring change stamps with a fresh actor from then on", async () => {
  const sim = await createSeedCluster({ seed: 9, settings: { nodes: 4, n: 2, w: 2, r: 1, vnodesPerNode: 8 } });
  const keys = 200;
  for (let index = 0; index < keys; index++) await sim.run(sim.core.put(`moved-${index}`, "v"));
  const before = new Map(sim.core.members.map((node) => [node, sim.host.lifeOf(node)!.core.actor] as const));
  await sim.run(sim.core.configure({ vnodesPerNode: 32 })); // moves keys, then each node drops what it lost
  const changed = sim.core.members.filter((node) => sim.host.lifeOf(node)!.core.actor !== before.get(node));
  assert.ok(changed.length > 0, "some node dropped keys it had stamped");
  const actors = new Set([...before.values(), ...sim.core.members.map((node) => sim.host.lifeOf(node)!.core.actor)]);
  assert.is(actors.size, before.size + changed.length, "every replacement actor is new");
  // A write the node coordinates now carries its new actor.
  const node = changed[0]!;
  let index = 0;
  while (sim.core.preferenceList(`after-${index}`)[0] !== node) index++;
  const key = `after-${index}`;
  await sim.run(sim.core.put(key, "w"));
  const stored = sim.host.lifeOf(node)!.store.get(encoder.encode(key));
  assert.equal(stored.map((version) => decodeVersion(version.version).dot.actor), [sim.host.lifeOf(node)!.core.actor]);
  for (let index = 0; index < keys; index += 17) assert.equal((await sim.run(sim.core.get(`moved-${index}`))).values.map((value) => decoder.decode(value)), ["v"]);
});

test.run();
