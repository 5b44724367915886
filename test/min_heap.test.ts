import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import { MinHeap } from "../src/util/min_heap.ts";

test("items come out in order under random pushes, pops, in-place key changes and filtering", () => {
  const prng = createPrng(5);
  const heap = new MinHeap<{ key: number }>((a, b) => a.key < b.key);
  const model: { key: number }[] = [];
  for (let step = 0; step < 20_000; step++) {
    const roll = prng.nextInt(10);
    if (roll < 5) {
      const item = { key: prng.nextInt(1000) };
      heap.push(item);
      model.push(item);
    } else if (roll < 8) {
      const smallest = model.reduce((min, item) => Math.min(min, item.key), Infinity);
      const popped = heap.pop();
      assert.is(popped?.key ?? Infinity, smallest);
      if (popped) model.splice(model.indexOf(popped), 1); // the same object: keys may tie
    } else if (roll < 9 && heap.size > 0) {
      const first = heap.peek()!;
      first.key += prng.nextInt(500);
      heap.fixFirst();
    } else {
      const threshold = prng.nextInt(1000);
      const removed = heap.retain((item) => item.key !== threshold);
      const before = model.length;
      model.splice(0, model.length, ...model.filter((item) => item.key !== threshold));
      assert.is(removed, before - model.length);
    }
    assert.is(heap.size, model.length);
  }
  model.sort((a, b) => a.key - b.key);
  for (const expected of model) assert.is(heap.pop()?.key, expected.key);
  assert.is(heap.pop(), undefined);
});

test.run();
