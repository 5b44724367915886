/**
 * The error codec: every typed error survives a thread boundary (structured clone, as postMessage
 * does) as its own class, with its code, outcome, fields and exact message.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeError, encodeError } from "../src/util/error_codec.ts";
import {
  BusyError,
  ClosedError,
  CorruptionError,
  IoError,
  LockedError,
  LoomRangeError,
  LoomTypeError,
  QuorumError,
  RingChangeError,
  TooManySiblingsError,
} from "../src/util/errors.ts";

const samples: Error[] = [
  new LoomTypeError("put failed: key must be a string or a Uint8Array, got number 1"),
  new LoomRangeError("create cluster failed: memtableBytes is 0, must be between 65536 and 1073741824"),
  new ClosedError("get failed: cluster is closed"),
  new BusyError("put failed: 4096 requests in flight, limit is 4096"),
  new RingChangeError("add node failed: node 3 went down while keys moved"),
  new LockedError("create cluster failed: /tmp/x is locked by process 42", "/tmp/x", 42),
  new IoError("sync failed: EIO", "/tmp/x/000001.log"),
  new CorruptionError("bad magic", "/tmp/x/MANIFEST", 0),
  new QuorumError({ action: "delete", acknowledged: 1, required: 2, replicas: 3, outcome: "unknown" }),
  new QuorumError({ action: "get", acknowledged: 0, required: 2, replicas: 3, outcome: "not-applied", detail: "every replica is down" }),
  new TooManySiblingsError("put", { siblings: 65, siblingsMax: 64 }),
];

test("every typed error comes back across a structured clone as its own class with code, outcome and fields", () => {
  for (const original of samples) {
    const decoded = decodeError(structuredClone(encodeError(original)));
    assert.is(decoded.constructor, original.constructor, original.name);
    assert.is(decoded.name, original.name);
    assert.is(decoded.message, original.message);
    const fields = original as unknown as Record<string, unknown>;
    const back = decoded as unknown as Record<string, unknown>;
    for (const field of ["code", "outcome", "path", "offset", "pid", "acknowledged", "required", "replicas", "siblings", "siblingsMax"]) {
      assert.is(back[field], fields[field], `${original.name}.${field}`);
    }
  }
});

test("a plain error keeps its name and message, and a thrown non-error becomes an Error", () => {
  const bug = new RangeError("index out of bounds");
  const decoded = decodeError(structuredClone(encodeError(bug)));
  assert.is(decoded.name, "RangeError");
  assert.is(decoded.message, "index out of bounds");
  assert.is(decodeError(encodeError("just a string")).message, "just a string");
});

test("operating errors default to not-applied; IO, corruption and quorum failures to unknown", () => {
  assert.is(new LoomTypeError("x").outcome, "not-applied");
  assert.is(new ClosedError("x").outcome, "not-applied");
  assert.is(new IoError("x", "/p").outcome, "unknown");
  assert.is(new CorruptionError("x", "/p", 1).outcome, "unknown");
  assert.is(new QuorumError({ action: "put", acknowledged: 1, required: 2, replicas: 3 }).outcome, "unknown");
});

test.run();
