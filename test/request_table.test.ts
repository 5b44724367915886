/** The main thread's table of requests in flight (src/cluster/request_table.ts), on virtual time. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RequestTable, type OpenRequest } from "../src/cluster/request_table.ts";
import { SimClock } from "../src/io/sim_clock.ts";
import { rejectsWithCode } from "./support/assertions.ts";

function table() {
  const clock = new SimClock();
  const requests = new RequestTable(clock);
  const sent: { coordinator: number; id: number; timeoutMs: number }[] = [];
  const open = (action: OpenRequest["action"], options: { candidates?: number[]; timeoutMs?: number; down?: Set<number> } = {}) =>
    requests.open({
      action,
      replicas: 3,
      required: 2,
      candidates: options.candidates ?? [1, 2, 3],
      timeoutMs: options.timeoutMs ?? 1000,
      send: (coordinator, id, timeoutMs) => sent.push({ coordinator, id, timeoutMs }),
      available: (node) => !(options.down ?? new Set()).has(node),
    });
  return { clock, requests, sent, open };
}

test("a get whose coordinator does not answer within a quarter of its timeout goes on to the next candidate, and the first answer wins", async () => {
  const { clock, requests, sent, open } = table();
  const answer = open("get");
  assert.equal(sent.map((s) => s.coordinator), [1]);
  clock.advance(250);
  assert.equal(sent.map((s) => [s.coordinator, s.timeoutMs]), [[1, 1000], [2, 750]], "the retry carries what is left of the deadline");
  requests.settle(sent[0]!.id, 1, { ok: true, value: "late but first" });
  assert.is(await answer, "late but first");
  assert.is(requests.retries, 1);
});

test("a put whose coordinator exits fails as unknown and is never sent again", async () => {
  const { requests, sent, open } = table();
  const answer = open("put");
  requests.abandonCoordinatedBy(1, "coordinating node 1 crashed");
  const error = await rejectsWithCode(() => answer, "LOOM_QUORUM");
  assert.is((error as { outcome?: string }).outcome, "unknown");
  assert.is(sent.length, 1);
});

test("a refusal marked retry goes on to the next available candidate, for a put too", async () => {
  const { requests, sent, open } = table();
  const answer = open("put", { down: new Set([2]) });
  requests.settle(sent[0]!.id, 1, { ok: false, error: new Error("store failed"), retry: true });
  assert.equal(sent.map((s) => s.coordinator), [1, 3], "node 2 is down: skipped");
  requests.settle(sent[0]!.id, 3, { ok: true, value: "done" });
  assert.is(await answer, "done");
});

test("a request nobody answers fails at its guard, and once nothing is in flight no timer is left armed", async () => {
  const { clock, sent, open } = table();
  const answer = open("put", { candidates: [1] });
  assert.is(sent.length, 1);
  clock.advance(3000); // the guard: twice the timeout plus a second
  const error = await rejectsWithCode(() => answer, "LOOM_QUORUM");
  assert.match(String(error), /did not answer within 3000 ms/);
  assert.is(clock.nextDeadlineMs(), undefined, "a settled table keeps no timer (it would hold the process open)");
});

test("settling the last request in flight disarms the timer", async () => {
  const { clock, requests, sent, open } = table();
  const first = open("get");
  const second = open("put");
  requests.settle(sent[0]!.id, 1, { ok: true, value: 1 });
  assert.ok(clock.nextDeadlineMs() !== undefined, "a request still waits");
  requests.settle(sent[1]!.id, 1, { ok: true, value: 2 });
  await Promise.all([first, second]);
  assert.is(clock.nextDeadlineMs(), undefined);
});

test.run();
