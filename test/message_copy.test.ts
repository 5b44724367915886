import { test } from "uvu";
import * as assert from "uvu/assert";
import { copyMessage } from "../src/transport/message_copy.ts";

test("a copied message equals what structuredClone gives and shares nothing mutable with the original", () => {
  const backing = new Uint8Array(64).map((_, index) => index);
  const message = {
    type: 7,
    key: backing.subarray(3, 9),
    items: [{ value: backing.subarray(10, 12), tombstone: null, missing: undefined }, 1, "two", true],
    table: [1, 2, 3, 4.5, -0],
    nested: { deeper: { list: [[new Uint8Array([9])]] } },
  };
  const copy = copyMessage(message);
  assert.equal(copy, structuredClone(message));
  assert.is.not(copy.key, message.key);
  assert.is(copy.key.byteLength, 6);
  assert.is(copy.key.buffer.byteLength, 6, "a view comes out compact, not with its sender's whole buffer");
  assert.ok(Object.is(copy.table[4], -0));
  const first = copy.items[0] as { missing: unknown };
  assert.ok("missing" in first && first.missing === undefined);
  backing[3] = 200;
  (message.nested.deeper.list[0]![0] as Uint8Array)[0] = 1;
  message.table[0] = 100;
  assert.is(copy.key[0], 3);
  assert.is((copy.nested.deeper.list[0]![0] as Uint8Array)[0], 9);
  assert.is(copy.table[0], 1);
});

test("what structuredClone refuses, a copied message refuses the same way, and other objects are cloned by it", () => {
  assert.throws(() => copyMessage({ callback: () => 1 }), (error: Error) => error.name === "DataCloneError");
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const copied = copyMessage(cyclic);
  assert.is(copied.self, copied, "a cycle is left to structuredClone, which keeps it");
  const withMap = copyMessage({ map: new Map([[1, "x"]]), when: new Date(5) });
  assert.equal([...withMap.map], [[1, "x"]]);
  assert.is(withMap.when.getTime(), 5);
});

test.run();
