/** The gossip failure detector, driven by hand: rounds, silences, restarts, forgetting. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import { GossipState, gossipTableNodes, type MembershipEvent } from "../src/membership/gossip.ts";

const config = { intervalMs: 100, failAfterMs: 1000, cleanupAfterMs: 5000 };
const members = [0, 1, 2, 3, 4];

/** Five nodes and a passive observer; `silent` nodes neither tick nor receive. */
function cluster() {
  const prng = createPrng(1);
  const nodes = new Map(members.map((node) => [node, new GossipState({ self: node, generation: 1, members, config, nowMs: 0 })]));
  const observer = new GossipState({ generation: 0, members, config, nowMs: 0 });
  const silent = new Set<number>();
  const events: (MembershipEvent & { observer: number | "main" })[] = [];
  let nowMs = 0;
  const round = () => {
    nowMs += config.intervalMs;
    const outbox: { to: number | "main"; table: readonly number[] }[] = [];
    for (const [node, state] of nodes) {
      if (silent.has(node)) continue;
      const result = state.tick(nowMs, prng);
      events.push(...result.events.map((event) => ({ ...event, observer: node })));
      for (const to of result.sendTo) outbox.push({ to, table: result.table });
      outbox.push({ to: "main", table: result.table });
    }
    events.push(...observer.tick(nowMs, prng).events.map((event) => ({ ...event, observer: "main" as const })));
    for (const { to, table } of outbox) {
      if (to === "main") events.push(...observer.receive(table, nowMs).map((event) => ({ ...event, observer: "main" as const })));
      else if (!silent.has(to)) events.push(...nodes.get(to)!.receive(table, nowMs).map((event) => ({ ...event, observer: to })));
    }
  };
  return { nodes, observer, silent, events, round, now: () => nowMs };
}

test("healthy nodes stay up: no node is ever suspected over a minute of rounds", () => {
  const run = cluster();
  for (let index = 0; index < 600; index++) run.round();
  assert.equal(run.events, []);
  for (const state of run.nodes.values()) assert.equal(state.down(), []);
  assert.equal(run.observer.view().map((member) => member.status), ["up", "up", "up", "up", "up"]);
});

test("a node that stops beating is marked down by every node and the observer within failAfterMs plus a round", () => {
  const run = cluster();
  for (let index = 0; index < 20; index++) run.round();
  const stoppedAt = run.now();
  run.silent.add(3);
  for (let index = 0; index < 15; index++) run.round();
  const downs = run.events.filter((event) => event.node === 3 && event.status === "down");
  assert.equal(downs.map((event) => event.observer).sort(), [0, 1, 2, 4, "main"].sort());
  for (const event of downs) assert.ok(event.atMs - stoppedAt <= config.failAfterMs + 2 * config.intervalMs, `${event.observer} at +${event.atMs - stoppedAt}`);
  assert.ok(!run.observer.isUp(3));
});

test("a paused node that beats again is up again; a restarted one comes back with a higher generation", () => {
  const run = cluster();
  run.silent.add(2);
  for (let index = 0; index < 15; index++) run.round();
  assert.ok(!run.observer.isUp(2) && !run.nodes.get(0)!.isUp(2));
  run.silent.delete(2); // a pause ends: the same life beats on
  for (let index = 0; index < 5; index++) run.round();
  assert.ok(run.observer.isUp(2) && run.nodes.get(0)!.isUp(2));
  run.silent.add(2);
  for (let index = 0; index < 15; index++) run.round();
  run.nodes.set(2, new GossipState({ self: 2, generation: 2, members, config, nowMs: run.now() })); // a restart
  run.silent.delete(2);
  for (let index = 0; index < 5; index++) run.round();
  assert.equal(run.observer.view().find((member) => member.node === 2)!.generation, 2);
  assert.ok(run.observer.isUp(2));
});

test("a node down past cleanupAfterMs is forgotten by the table, and stale relays of it never bring it back", () => {
  const run = cluster();
  for (let index = 0; index < 10; index++) run.round();
  const stale = run.nodes.get(0)!.table();
  run.silent.add(4);
  for (let index = 0; index < 70; index++) run.round();
  assert.ok(!gossipTableNodes(run.nodes.get(1)!.table()).includes(4), "forgotten: not gossiped");
  assert.equal(run.nodes.get(1)!.receive(stale, run.now()), [], "an old entry does not resurrect it");
  assert.ok(!run.nodes.get(1)!.isUp(4));
  assert.equal(run.nodes.get(1)!.view().map((member) => member.node), members, "still a member of the ring");
});

test("a shorter failAfterMs takes effect at the next round", () => {
  const run = cluster();
  for (let index = 0; index < 5; index++) run.round();
  for (const state of [...run.nodes.values(), run.observer]) state.setConfig({ ...config, failAfterMs: 300 });
  run.silent.add(1);
  for (let index = 0; index < 4; index++) run.round();
  assert.ok(!run.observer.isUp(1), "suspected after 300 ms, not 1000");
});

test.run();
