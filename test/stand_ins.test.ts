/** The stand-in choice of sloppy quorum (src/handoff/stand_ins.ts): pure, liveness given. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chooseTargets } from "../src/handoff/stand_ins.ts";

const choose = (up: readonly number[], options: { fallbacks?: number[]; strict?: boolean; self?: number } = {}) =>
  chooseTargets({
    self: options.self ?? 1,
    primaries: [1, 2, 3],
    fallbacks: options.fallbacks ?? [0, 4],
    strict: options.strict ?? false,
    isUp: (node) => up.includes(node),
    downForMs: () => 10,
    windowMs: 1000,
  });

test("a primary that is down is replaced by the next healthy fallback, which holds a hint for it", () => {
  const targets = choose([0, 1, 2, 4]);
  assert.equal(targets.list, [1, 2, 0]);
  assert.equal([...targets.hints], [[0, 3]]);
  assert.equal(targets.primaries, [1, 2]);
});

test("a primary asked although it is down (no stand-in left) is not counted on for pw or pr", () => {
  // Node 2 is suspected and node 3 is down; the one healthy fallback stands in for node 2.
  const targets = choose([0, 1], { fallbacks: [0, 4] });
  assert.equal(targets.list, [1, 0, 3]);
  assert.equal([...targets.hints], [[0, 2]]);
  assert.equal(targets.primaries, [1], "node 3 will not answer: a pw=2 write must not wait for it");
});

test("while keys move (strict), every primary is asked and no fallback stands in", () => {
  const targets = choose([1], { strict: true });
  assert.equal(targets.list, [1, 2, 3]);
  assert.is(targets.hints.size, 0);
});

test("a coordinator that is no primary, seeing every primary up, stands in for the first one instead of also asking it", () => {
  const targets = choose([0, 1, 2, 3, 4], { self: 0 });
  assert.equal(targets.list, [0, 2, 3]);
  assert.equal([...targets.hints], [[0, 1]]);
});

test.run();
