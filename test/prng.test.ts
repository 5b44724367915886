import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng, type Prng } from "../src/io/prng.ts";
import { rejectsWithCode } from "./support/assertions.ts";

function draws(prng: Prng, count: number): number[] {
  return Array.from({ length: count }, () => prng.nextU32());
}

function correlation(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const meanX = xs.reduce((sum, x) => sum + x, 0) / n;
  const meanY = ys.reduce((sum, y) => sum + y, 0) / n;
  let covariance = 0;
  let varianceX = 0;
  let varianceY = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - meanX;
    const dy = ys[i]! - meanY;
    covariance += dx * dy;
    varianceX += dx * dx;
    varianceY += dy * dy;
  }
  return covariance / Math.sqrt(varianceX * varianceY);
}

test("the same seed produces the same stream", () => {
  assert.equal(draws(createPrng(42), 1000), draws(createPrng(42), 1000));
});

test("different seeds, including seeds that differ only above bit 31, produce different streams", () => {
  const seeds = [0, 1, 2, 2 ** 32, 2 ** 32 + 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
  const firstDraws = seeds.map((seed) => draws(createPrng(seed), 4).join(","));
  assert.is(new Set(firstDraws).size, seeds.length);
});

test("nextU32 returns integers in [0, 2^32) whose bits are balanced", () => {
  const prng = createPrng(7);
  const bitCounts = new Array<number>(32).fill(0);
  for (let i = 0; i < 20_000; i++) {
    const value = prng.nextU32();
    assert.ok(Number.isInteger(value) && value >= 0 && value < 2 ** 32);
    for (let bit = 0; bit < 32; bit++) if ((value >>> bit) & 1) bitCounts[bit]! += 1;
  }
  for (const count of bitCounts) assert.ok(Math.abs(count - 10_000) < 500, `bit set ${count} times of 20000`);
});

test("nextInt spreads 100k draws evenly over its range", () => {
  const prng = createPrng(1234);
  const buckets = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) buckets[prng.nextInt(10)]! += 1;
  // Expected 10000 per bucket, standard deviation about 95: 500 is more than 5 sigma.
  for (const count of buckets) assert.ok(Math.abs(count - 10_000) < 500, `bucket has ${count}`);
});

test("nextInt has no modulo bias for a bound that does not divide 2^32", () => {
  // With plain `u32 % max`, values below 2^30 would come up half the time instead of a third.
  const prng = createPrng(99);
  const max = 3 * 2 ** 30;
  let low = 0;
  for (let i = 0; i < 30_000; i++) if (prng.nextInt(max) < 2 ** 30) low += 1;
  assert.ok(Math.abs(low / 30_000 - 1 / 3) < 0.02, `fraction below 2^30 is ${low / 30_000}`);
});

test("nextInt covers bounds above 2^32 up to 2^53", () => {
  const prng = createPrng(5);
  const max = 2 ** 40 + 3;
  let aboveTwoPow32 = 0;
  for (let i = 0; i < 1000; i++) {
    const value = prng.nextInt(max);
    assert.ok(Number.isInteger(value) && value >= 0 && value < max);
    if (value >= 2 ** 32) aboveTwoPow32 += 1;
  }
  assert.ok(aboveTwoPow32 > 990);
  assert.ok(prng.nextInt(2 ** 53) < 2 ** 53);
});

test("nextRange stays within its bounds and reaches both ends", () => {
  const prng = createPrng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const value = prng.nextRange(-3, 4);
    assert.ok(value >= -3 && value < 4);
    seen.add(value);
  }
  assert.equal([...seen].sort((a, b) => a - b), [-3, -2, -1, 0, 1, 2, 3]);
});

test("nextFloat lies in [0, 1) with mean near one half", () => {
  const prng = createPrng(11);
  let sum = 0;
  for (let i = 0; i < 100_000; i++) {
    const value = prng.nextFloat();
    assert.ok(value >= 0 && value < 1);
    sum += value;
  }
  assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.01);
});

test("chance(0) never fires, chance(1) always fires, chance(0.25) fires about a quarter of the time", () => {
  const prng = createPrng(8);
  let quarter = 0;
  for (let i = 0; i < 40_000; i++) {
    assert.is(prng.chance(0), false);
    assert.is(prng.chance(1), true);
    if (prng.chance(0.25)) quarter += 1;
  }
  assert.ok(Math.abs(quarter / 40_000 - 0.25) < 0.015, `fired ${quarter} times`);
});

test("fork is deterministic: the same parent state forks the same child", () => {
  assert.equal(draws(createPrng(21).fork(), 100), draws(createPrng(21).fork(), 100));
});

test("a forked child differs from its parent, its siblings, and does not disturb the parent", () => {
  const parent = createPrng(21);
  const first = parent.fork();
  const second = parent.fork();
  const firstDraws = draws(first, 10_000);
  const secondDraws = draws(second, 10_000);
  const parentDraws = draws(parent, 10_000);
  assert.not.equal(firstDraws, secondDraws);
  assert.ok(Math.abs(correlation(firstDraws, parentDraws)) < 0.05);
  assert.ok(Math.abs(correlation(firstDraws, secondDraws)) < 0.05);

  // Drawing from a child leaves the parent's stream as it would have been without the child.
  const undisturbed = createPrng(21);
  undisturbed.fork();
  undisturbed.fork();
  const replica = createPrng(21);
  const busyChild = replica.fork();
  replica.fork();
  draws(busyChild, 500);
  assert.equal(draws(replica, 100), draws(undisturbed, 100));
});

test("shuffle permutes in place and reaches every ordering of three elements about equally", () => {
  const prng = createPrng(17);
  const counts = new Map<string, number>();
  for (let i = 0; i < 6000; i++) {
    const array = ["a", "b", "c"];
    prng.shuffle(array);
    assert.equal([...array].sort(), ["a", "b", "c"]);
    counts.set(array.join(""), (counts.get(array.join("")) ?? 0) + 1);
  }
  assert.is(counts.size, 6);
  for (const count of counts.values()) assert.ok(Math.abs(count - 1000) < 150, `ordering seen ${count} times`);
});

test("pick returns every element of an array and refuses an empty one", async () => {
  const prng = createPrng(2);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(prng.pick(["x", "y", "z"]));
  assert.is(seen.size, 3);
  await rejectsWithCode(() => prng.pick([]), "LOOM_OUT_OF_RANGE");
});

test("bad arguments are refused with typed errors that quote the value", async () => {
  const prng = createPrng(1);
  assert.throws(() => prng.nextInt(0), /maxExclusive is number 0/);
  await rejectsWithCode(() => prng.nextInt(2.5), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => prng.nextInt(2 ** 53 + 2), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => prng.nextRange(5, 5), "LOOM_OUT_OF_RANGE");
  assert.throws(() => prng.chance(1.5), /probability is number 1.5/);
  await rejectsWithCode(() => prng.chance(Number.NaN), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => createPrng(0.5), "LOOM_INVALID_ARGUMENT");
});

test("the generator never consults Math.random", () => {
  const original = Math.random;
  Math.random = () => {
    throw new Error("Math.random called");
  };
  try {
    const prng = createPrng(9).fork();
    prng.nextU32();
    prng.nextFloat();
    prng.nextInt(1000);
    prng.nextInt(2 ** 50);
    prng.nextRange(1, 9);
    prng.chance(0.5);
    prng.shuffle([1, 2, 3, 4]);
    prng.pick([1, 2]);
  } finally {
    Math.random = original;
  }
});

test.run();
