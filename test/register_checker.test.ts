/** The register checker sees loss, phantoms and stale siblings, and accepts what a store may do. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RegisterChecker } from "../src/sim/register_checker.ts";

test("an acknowledged write missing from the final read is lost; one replaced by a present write is not", () => {
  const checker = new RegisterChecker();
  checker.settle(checker.write({ key: "a", value: "a1" }), "ok");
  checker.settle(checker.write({ key: "a", value: "a2", replaces: ["a1"] }), "ok");
  checker.settle(checker.write({ key: "b", value: "b1" }), "ok");
  checker.finalRead("a", ["a2"]);
  checker.finalRead("b", []);
  const report = checker.report();
  assert.is(report.lost.length, 1);
  assert.match(report.lost[0]!, /b: acknowledged put b1 is missing/);
  assert.is(report.acknowledged, 3);
});

test("an unknown write may appear or not, and covers what it replaced only when it is itself covered", () => {
  const checker = new RegisterChecker();
  checker.settle(checker.write({ key: "k", value: "v1" }), "ok");
  checker.settle(checker.write({ key: "k", value: "v2", replaces: ["v1"] }), "unknown");
  checker.finalRead("k", ["v1"]);
  assert.equal(checker.report().lost, [], "v2 was not applied: v1 must stay, and it does");
  const second = new RegisterChecker();
  second.settle(second.write({ key: "k", value: "v1" }), "ok");
  second.settle(second.write({ key: "k", value: "v2", replaces: ["v1"] }), "unknown");
  second.finalRead("k", []);
  assert.is(second.report().lost.length, 1, "neither v1 nor the write that would replace it is there");
  const third = new RegisterChecker();
  third.settle(third.write({ key: "k", value: "v1" }), "ok");
  third.settle(third.write({ key: "k", value: "v2", replaces: ["v1"] }), "unknown");
  third.finalRead("k", ["v2"]);
  assert.equal(third.report().lost, []);
});

test("an acknowledged delete covers the values it replaced", () => {
  const checker = new RegisterChecker();
  checker.settle(checker.write({ key: "k", value: "v1" }), "ok");
  checker.settle(checker.write({ key: "k", value: "d1", kind: "delete", replaces: ["v1"] }), "ok");
  checker.finalRead("k", []);
  assert.equal(checker.report().lost, []);
});

test("reading a value never written, written to another key, or refused as not-applied is a phantom", () => {
  const checker = new RegisterChecker();
  checker.settle(checker.write({ key: "k", value: "v1" }), "ok");
  const refused = checker.write({ key: "k", value: "v2" });
  checker.observe("k", ["v2"]);
  checker.settle(refused, "not-applied");
  checker.observe("k", ["invented"]);
  checker.settle(checker.write({ key: "other", value: "o1" }), "ok");
  checker.finalRead("k", ["v1", "o1"]);
  const phantoms = checker.report().phantoms;
  assert.is(phantoms.length, 3, phantoms.join("\n"));
});

test("a final sibling set holding a value next to the write that replaced it is reported", () => {
  const checker = new RegisterChecker();
  checker.settle(checker.write({ key: "k", value: "v1" }), "ok");
  checker.settle(checker.write({ key: "k", value: "v2", replaces: ["v1"] }), "ok");
  checker.settle(checker.write({ key: "k", value: "v3" }), "ok");
  checker.finalRead("k", ["v2", "v3", "v1"]);
  const report = checker.report();
  assert.is(report.staleSiblings.length, 1);
  assert.equal(report.lost, []);
});

test("a final read showing a value an acknowledged delete replaced is reported as resurrected", () => {
  const checker = new RegisterChecker();
  checker.settle(checker.write({ key: "k", value: "v1" }), "ok");
  checker.settle(checker.write({ key: "k", value: "d1", kind: "delete", replaces: ["v1"] }), "ok");
  checker.settle(checker.write({ key: "j", value: "w1" }), "ok");
  checker.settle(checker.write({ key: "j", value: "e1", kind: "delete", replaces: ["w1"] }), "unknown");
  checker.finalRead("k", ["v1"]);
  checker.finalRead("j", ["w1"]);
  const report = checker.report();
  assert.is(report.resurrected.length, 1, report.resurrected.join("\n"));
  assert.match(report.resurrected[0]!, /v1 is back although acknowledged delete d1 replaced it/);
});

test.run();
