import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import {
  HashRing,
  keyPosition,
  rangeContains,
  rangeSize,
  RING_SIZE,
  ringLimits,
  type TokenRange,
} from "../src/ring/hash_ring.ts";
import { keyMoves, planTransfer, streamTargets, type Transfer } from "../src/ringchange/transfer_plan.ts";
import { utf8Encode } from "../src/util/bytes.ts";
import { LoomRangeError, LoomTypeError } from "../src/util/errors.ts";
import { rejectsWithCode } from "./support/assertions.ts";

/** uvu's `throws` calls a function argument as a predicate: check the class and the message. */
function rejects(type: abstract new (...args: never[]) => Error, pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof type && pattern.test(error.message);
}

function randomKeys(count: number, seed: number): Uint8Array[] {
  const prng = createPrng(seed);
  return Array.from({ length: count }, () => {
    const key = new Uint8Array(1 + prng.nextInt(24));
    for (let i = 0; i < key.length; i++) key[i] = prng.nextInt(256);
    return key;
  });
}

function ids(count: number, first = 0): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((node) => b.includes(node));
}

const keys20k = randomKeys(20_000, 1);

test("a preference list holds min(n, nodes) distinct nodes of the ring", () => {
  for (const nodeCount of [1, 2, 3, 5, 8]) {
    const ring = HashRing.build({ nodes: ids(nodeCount, 10), vnodesPerNode: 16 });
    for (const key of keys20k.slice(0, 2_000)) {
      for (const n of [1, 2, 3, 5, 9]) {
        const list = ring.preferenceList(key, n);
        assert.is(list.length, Math.min(n, nodeCount));
        assert.is(new Set(list).size, list.length, `duplicate node in ${list.join(",")}`);
        for (const node of list) assert.ok(ring.has(node), `node ${node} is not in the ring`);
        assert.is(list[0], ring.ownerOf(key));
      }
    }
  }
});

test("a preference list skips further vnodes of a node already chosen", () => {
  // Two nodes with many vnodes: the walk meets the owner's vnodes again before the other node.
  const ring = HashRing.build({ nodes: [1, 2], vnodesPerNode: 64 });
  const tokens = ring.tokens();
  const runAt = tokens.findIndex((vnode, slot) => slot > 0 && vnode.node === tokens[slot - 1]!.node);
  assert.ok(runAt > 0, "some vnode follows one of the same node");
  const position = tokens[runAt - 1]!.token; // owned by the first vnode of a run of one node
  const owner = tokens[runAt - 1]!.node;
  assert.equal(ring.preferenceListAt(position, 2), [owner, owner === 1 ? 2 : 1]);
});

test("a position equal to a token belongs to that token's vnode, one past it to the next vnode", () => {
  const ring = HashRing.build({ nodes: ids(4), vnodesPerNode: 8 });
  const tokens = ring.tokens();
  for (let slot = 0; slot < tokens.length; slot++) {
    const next = tokens[(slot + 1) % tokens.length]!;
    assert.is(ring.ownerAt(tokens[slot]!.token), tokens[slot]!.node);
    assert.is(ring.ownerAt(tokens[slot]!.token + 1), next.node);
  }
  assert.is(ring.ownerAt(RING_SIZE - 1), tokens[0]!.node, "positions past the last token wrap to the first");
  assert.is(ring.ownerAt(0), tokens[0]!.node);
});

test("a lookup finds the same owner as a linear scan of the tokens, also at power-of-two boundaries", () => {
  const prng = createPrng(5);
  for (const vnodesPerNode of [1, 3, 64]) {
    const ring = HashRing.build({ nodes: ids(5), vnodesPerNode });
    const tokens = ring.tokens();
    const naive = (position: number) => (tokens.find((vnode) => vnode.token >= position) ?? tokens[0]!).node;
    const positions = [0, RING_SIZE - 1];
    for (let i = 0; i < 2_000; i++) positions.push(prng.nextInt(RING_SIZE));
    for (let bits = 1; bits <= 12; bits++) {
      for (let k = 1; k < 2 ** bits; k += 2 ** Math.max(0, bits - 4)) positions.push(k * (RING_SIZE / 2 ** bits) - 1, k * (RING_SIZE / 2 ** bits));
    }
    for (const position of positions) assert.is(ring.ownerAt(position), naive(position), `position ${position}`);
  }
});

test("the same nodes and vnode count build the same ring, whatever the order of the nodes", () => {
  const a = HashRing.build({ nodes: [4, 0, 2, 1, 3], vnodesPerNode: 32 });
  const b = HashRing.build({ nodes: [0, 1, 2, 3, 4], vnodesPerNode: 32 });
  assert.equal(a.tokens(), b.tokens());
  assert.equal(a.nodes, [0, 1, 2, 3, 4]);
  for (const key of keys20k.slice(0, 1_000)) assert.equal(a.preferenceList(key, 3), b.preferenceList(key, 3));
});

test("key positions and tokens are pinned, so a hash change cannot slip through", () => {
  // Golden values: changing them breaks every persisted ring and every stored key's placement.
  assert.is(keyPosition(utf8Encode("")), 0x255dd1e379702);
  assert.is(keyPosition(utf8Encode("user:1")), 0x17d09d5738afc1);
  const ring = HashRing.build({ nodes: [0, 1, 2], vnodesPerNode: 2 });
  assert.equal(ring.tokens().map((vnode) => `${vnode.node}#${vnode.index}`), ["2#0", "1#0", "0#1", "0#0", "2#1", "1#1"]);
  assert.is(ring.tokens()[0]!.token, 700567798839909);
});

test("key positions are integers in [0, 2^53) spread evenly over the ring", () => {
  const buckets = new Array<number>(64).fill(0);
  const sequential = Array.from({ length: 64_000 }, (_, i) => utf8Encode(`user:${i}`));
  for (const key of sequential) {
    const position = keyPosition(key);
    assert.ok(Number.isInteger(position) && position >= 0 && position < RING_SIZE);
    buckets[Math.floor(position / (RING_SIZE / 64))]! += 1;
  }
  // 1000 expected per bucket: chi-square with 63 degrees of freedom stays under 110 (p < 0.001).
  const chiSquare = buckets.reduce((sum, count) => sum + (count - 1000) ** 2 / 1000, 0);
  assert.ok(chiSquare < 110, `chi-square ${chiSquare.toFixed(1)} over 64 buckets`);
});

test("a node is in a key's preference list exactly when the key's position lies in one of its ranges", () => {
  const ring = HashRing.build({ nodes: ids(5), vnodesPerNode: 16 });
  for (const n of [1, 3]) {
    const rangesByNode = new Map(ring.nodes.map((node) => [node, ring.rangesOf(node, n)] as const));
    for (const key of keys20k.slice(0, 5_000)) {
      const position = keyPosition(key);
      const list = ring.preferenceList(key, n);
      for (const [node, ranges] of rangesByNode) {
        const inRanges = ranges.some((range) => rangeContains(range, position));
        assert.is(inRanges, list.includes(node), `node ${node}, n ${n}, position ${position}`);
      }
    }
    // Every position is held by exactly n nodes: the ranges of all nodes cover the ring n times.
    let covered = 0;
    for (const ranges of rangesByNode.values()) for (const range of ranges) covered += rangeSize(range) / RING_SIZE;
    assert.ok(Math.abs(covered - n) < 1e-9, `ranges cover the ring ${covered} times, expected ${n}`);
  }
});

test("replica ranges partition the ring and carry each key's preference list", () => {
  const ring = HashRing.build({ nodes: ids(4), vnodesPerNode: 8 });
  const ranges = ring.replicaRanges(3);
  const total = ranges.reduce((sum, entry) => sum + rangeSize(entry.range) / RING_SIZE, 0);
  assert.ok(Math.abs(total - 1) < 1e-12, `replica ranges cover ${total} of the ring`);
  for (const key of keys20k.slice(0, 2_000)) {
    const position = keyPosition(key);
    const holding = ranges.filter((entry) => rangeContains(entry.range, position));
    assert.is(holding.length, 1);
    assert.equal(holding[0]!.replicas, ring.preferenceList(key, 3));
  }
});

test("a ring of one node with one vnode gives that node the whole ring", () => {
  const ring = HashRing.build({ nodes: [7], vnodesPerNode: 1 });
  const [whole] = ring.rangesOf(7, 3);
  assert.ok(whole !== undefined);
  assert.is(rangeSize(whole), RING_SIZE);
  for (const position of [0, 1, RING_SIZE - 1, ring.tokens()[0]!.token]) assert.ok(rangeContains(whole, position));
  assert.equal(ring.preferenceList(utf8Encode("k"), 3), [7]);
});

test("adding a node moves about 1/(nodes+1) of the keys, and only to the new node", () => {
  const before = HashRing.build({ nodes: ids(5), vnodesPerNode: 128 });
  const after = HashRing.build({ nodes: ids(6), vnodesPerNode: 128 });
  let moved = 0;
  for (const key of keys20k) {
    const ownerBefore = before.ownerOf(key);
    const ownerAfter = after.ownerOf(key);
    if (ownerBefore === ownerAfter) continue;
    moved++;
    assert.is(ownerAfter, 5, `a key moved from ${ownerBefore} to ${ownerAfter}, not to the new node`);
    // Its replica set gains the new node and loses exactly one node.
    const listBefore = before.preferenceList(key, 3);
    const listAfter = after.preferenceList(key, 3);
    assert.ok(listAfter.includes(5));
    assert.is(listBefore.filter((node) => !listAfter.includes(node)).length, 1);
  }
  const share = moved / keys20k.length;
  assert.ok(share > (1 / 6) * 0.75 && share < (1 / 6) * 1.25, `moved ${(share * 100).toFixed(1)} % of keys, expected about 16.7 %`);
});

test("removing a node moves only its keys, each to the next node of its preference list", () => {
  const before = HashRing.build({ nodes: ids(6), vnodesPerNode: 64 });
  const after = HashRing.build({ nodes: [0, 1, 3, 4, 5], vnodesPerNode: 64 });
  let moved = 0;
  for (const key of keys20k) {
    const listBefore = before.preferenceList(key, 4);
    const listAfter = after.preferenceList(key, 3);
    // The survivors keep their order; the walk just skips node 2.
    assert.equal(listAfter, listBefore.filter((node) => node !== 2).slice(0, 3));
    if (listBefore[0] === 2) moved++;
    else assert.is(after.ownerOf(key), listBefore[0]);
  }
  assert.ok(moved > 0);
});

test("raising vnodes per node keeps every existing token, so only about 40 % of keys change owner", () => {
  const before = HashRing.build({ nodes: ids(5), vnodesPerNode: 64 });
  const after = HashRing.build({ nodes: ids(5), vnodesPerNode: 128 });
  const tokensAfter = new Set(after.tokens().map((vnode) => `${vnode.node}#${vnode.index}@${vnode.token}`));
  for (const vnode of before.tokens()) assert.ok(tokensAfter.has(`${vnode.node}#${vnode.index}@${vnode.token}`));
  const moves = keyMoves(before, after, 3, keys20k);
  // A key changes owner when its new successor token is a new one (1/2) of another node (4/5): 40 %.
  const share = moves.ownerChanged / moves.keys;
  assert.ok(share > 0.3 && share < 0.5, `owner changed for ${(share * 100).toFixed(1)} % of keys`);
});

function checkPlanCoversExactly(before: HashRing, after: HashRing, n: number, nAfter: number = n): Transfer[] {
  const transfers = planTransfer(before, after, n, nAfter);
  let changed = 0;
  for (const key of keys20k) {
    const position = keyPosition(key);
    const listBefore = before.preferenceList(key, n);
    const listAfter = after.preferenceList(key, nAfter);
    // What each old replica streams for this key is exactly the plan's targets.
    for (const node of listBefore) {
      const targets = streamTargets({ ring: before, n }, { ring: after, n: nAfter }, position, node);
      assert.equal(targets, listAfter.filter((other) => !listBefore.includes(other)));
    }
    const outsider = [...before.nodes, ...after.nodes].find((node) => !listBefore.includes(node));
    if (outsider !== undefined) assert.equal(streamTargets({ ring: before, n }, { ring: after, n: nAfter }, position, outsider), [], "a node that did not hold the key streams nothing");
    const holding = transfers.filter((transfer) => rangeContains(transfer.range, position));
    assert.ok(holding.length <= 1, `position ${position} lies in ${holding.length} transfers`);
    const setChanged = !sameSet(listBefore, listAfter);
    if (setChanged) changed++;
    assert.is(holding.length === 1, setChanged, `position ${position}: ${listBefore.join(",")} -> ${listAfter.join(",")}`);
    const transfer = holding[0];
    if (transfer === undefined) continue;
    assert.equal(transfer.sources, listBefore);
    assert.equal(transfer.replicas, listAfter);
    assert.equal(transfer.targets, listAfter.filter((node) => !listBefore.includes(node)));
    assert.equal(transfer.releases, listBefore.filter((node) => !listAfter.includes(node)));
  }
  const counted = keyMoves(before, after, n, keys20k, nAfter);
  assert.is(counted.replicaSetChanged, changed);
  assert.ok(changed > 0, "the change moved some keys");
  return transfers;
}

test("a transfer plan covers exactly the keys whose replica set changes when a node joins", () => {
  const transfers = checkPlanCoversExactly(
    HashRing.build({ nodes: ids(5), vnodesPerNode: 64 }),
    HashRing.build({ nodes: ids(6), vnodesPerNode: 64 }),
    3,
  );
  for (const transfer of transfers) assert.equal(transfer.targets, [5]);
});

test("a transfer plan covers exactly the keys whose replica set changes when a node leaves", () => {
  const transfers = checkPlanCoversExactly(
    HashRing.build({ nodes: ids(6), vnodesPerNode: 64 }),
    HashRing.build({ nodes: [0, 1, 2, 3, 5], vnodesPerNode: 64 }),
    3,
  );
  for (const transfer of transfers) assert.equal(transfer.releases, [4]);
});

test("a transfer plan covers exactly the keys whose replica set changes when vnodes per node change", () => {
  checkPlanCoversExactly(
    HashRing.build({ nodes: ids(5), vnodesPerNode: 64 }),
    HashRing.build({ nodes: ids(5), vnodesPerNode: 128 }),
    3,
  );
  checkPlanCoversExactly(
    HashRing.build({ nodes: ids(5), vnodesPerNode: 256 }),
    HashRing.build({ nodes: ids(5), vnodesPerNode: 16 }),
    2,
  );
});

test("a transfer plan covers exactly the keys whose replica set changes when N goes up or down", () => {
  const ring = HashRing.build({ nodes: ids(5), vnodesPerNode: 32 });
  const up = checkPlanCoversExactly(ring, ring, 2, 3);
  for (const transfer of up) assert.is(transfer.targets.length, 1, "each key gains one replica");
  const down = checkPlanCoversExactly(ring, ring, 3, 2);
  for (const transfer of down) assert.equal(transfer.targets, [], "lowering N streams nothing");
});

test("a transfer plan covers exactly the keys whose replica set changes when nodes and vnodes change at once", () => {
  checkPlanCoversExactly(
    HashRing.build({ nodes: [0, 1, 2], vnodesPerNode: 8 }),
    HashRing.build({ nodes: [1, 2, 9, 12], vnodesPerNode: 3 }),
    3,
  );
  // Fewer nodes than n: a leaving node only releases; nobody gains.
  const transfers = checkPlanCoversExactly(
    HashRing.build({ nodes: [0, 1, 2], vnodesPerNode: 8 }),
    HashRing.build({ nodes: [0, 1], vnodesPerNode: 8 }),
    3,
  );
  const covered = transfers.reduce((sum, transfer) => sum + rangeSize(transfer.range) / RING_SIZE, 0);
  assert.ok(Math.abs(covered - 1) < 1e-12, `transfers cover ${covered} of the ring`);
  for (const transfer of transfers) {
    assert.equal(transfer.targets, []);
    assert.equal(transfer.releases, [2]);
  }
});

test("a transfer plan between rings that place keys alike is empty", () => {
  const ring = HashRing.build({ nodes: ids(5), vnodesPerNode: 64 });
  assert.equal(planTransfer(ring, HashRing.build({ nodes: ids(5), vnodesPerNode: 64 }), 3), []);
  // Three nodes, n = 3: every node holds every key whatever the vnodes, so nothing streams.
  const small = HashRing.build({ nodes: ids(3), vnodesPerNode: 4 });
  assert.equal(planTransfer(small, HashRing.build({ nodes: ids(3), vnodesPerNode: 40 }), 3), []);
});

test("a ring survives a JSON round trip with the same tokens and preference lists", () => {
  const ring = HashRing.build({ nodes: [3, 8, 21, 40], vnodesPerNode: 24 });
  const copy = HashRing.fromJSON(JSON.parse(JSON.stringify(ring)));
  assert.equal(copy.tokens(), ring.tokens());
  assert.equal(copy.nodes, ring.nodes);
  assert.is(copy.vnodesPerNode, 24);
  assert.is(copy.vnodeCount, 96);
  for (const key of keys20k.slice(0, 1_000)) assert.equal(copy.preferenceList(key, 3), ring.preferenceList(key, 3));
});

test("a ring JSON with another token digest, format or shape is refused", async () => {
  const json = JSON.parse(JSON.stringify(HashRing.build({ nodes: [1, 2], vnodesPerNode: 4 }))) as Record<string, unknown>;
  await rejectsWithCode(() => HashRing.fromJSON({ ...json, tokenDigest: "00000000000000" }), "LOOM_INVALID_ARGUMENT", /tokenDigest is "00000000000000"/);
  await rejectsWithCode(() => HashRing.fromJSON({ ...json, format: "loomkv.ring/0" }), "LOOM_INVALID_ARGUMENT", /format is "loomkv.ring\/0"/);
  await rejectsWithCode(() => HashRing.fromJSON({ ...json, nodes: "1,2" }), "LOOM_INVALID_ARGUMENT", /nodes is "1,2"/);
  await rejectsWithCode(() => HashRing.fromJSON(null), "LOOM_INVALID_ARGUMENT", /value is null/);
});

test("bad ring options are refused with a message naming the field and value", async () => {
  const build = (nodes: unknown, vnodesPerNode: unknown) => () =>
    HashRing.build({ nodes: nodes as number[], vnodesPerNode: vnodesPerNode as number });
  await rejectsWithCode(build([0, 1], 0), "LOOM_OUT_OF_RANGE", /vnodesPerNode is 0, must be in 1\.\.1024/);
  await rejectsWithCode(build([0, 1], ringLimits.vnodesPerNodeMax + 1), "LOOM_OUT_OF_RANGE", /vnodesPerNode is 1025/);
  await rejectsWithCode(build([0, 1], 1.5), "LOOM_INVALID_ARGUMENT", /vnodesPerNode is number 1\.5, must be an integer/);
  await rejectsWithCode(build([0, 1, 0], 8), "LOOM_INVALID_ARGUMENT", /node id 0 appears more than once/);
  await rejectsWithCode(build([], 8), "LOOM_OUT_OF_RANGE", /ring has 0 nodes/);
  await rejectsWithCode(build([0, -1], 8), "LOOM_INVALID_ARGUMENT", /node id number -1 must be an integer/);
  await rejectsWithCode(build([0, "1"], 8), "LOOM_INVALID_ARGUMENT", /node id "1"/);
  await rejectsWithCode(build(ids(ringLimits.nodesMax + 1), 1), "LOOM_OUT_OF_RANGE", /ring has 257 nodes, must have 1\.\.256/);
});

test("bad lookup arguments are refused with a message naming the value", async () => {
  const ring = HashRing.build({ nodes: [0, 1, 2], vnodesPerNode: 8 });
  const key = utf8Encode("k");
  await rejectsWithCode(() => ring.preferenceList(key, 0), "LOOM_OUT_OF_RANGE", /preference list failed: n is 0, must be at least 1/);
  await rejectsWithCode(() => ring.preferenceList(key, 2.5), "LOOM_INVALID_ARGUMENT", /n is number 2\.5/);
  await rejectsWithCode(() => ring.preferenceList("k" as unknown as Uint8Array, 3), "LOOM_INVALID_ARGUMENT", /key is "k"/);
  await rejectsWithCode(() => ring.preferenceListAt(RING_SIZE, 3), "LOOM_OUT_OF_RANGE", /position is/);
  await rejectsWithCode(() => ring.rangesOf(0, -1), "LOOM_OUT_OF_RANGE", /ranges of failed: n is -1/);
  await rejectsWithCode(() => ring.rangesOf(9, 3), "LOOM_OUT_OF_RANGE", /node number 9 is not in the ring \(nodes 0, 1, 2\)/);
  await rejectsWithCode(() => planTransfer(ring, ring, 0), "LOOM_OUT_OF_RANGE", /plan transfer failed: n is 0/);
  await rejectsWithCode(() => keyMoves(ring, ring, 0, []), "LOOM_OUT_OF_RANGE", /key moves failed: n is 0/);
});

test("a range that starts at or after its end wraps past the top of the ring", () => {
  const wrapping: TokenRange = { startExclusive: RING_SIZE - 10, endInclusive: 5 };
  assert.ok(rangeContains(wrapping, RING_SIZE - 1));
  assert.ok(rangeContains(wrapping, 0));
  assert.ok(rangeContains(wrapping, 5));
  assert.not.ok(rangeContains(wrapping, 6));
  assert.not.ok(rangeContains(wrapping, RING_SIZE - 10));
  assert.is(rangeSize(wrapping), 15);
  assert.is(rangeSize({ startExclusive: 10, endInclusive: 20 }), 10);
});

test.run();
