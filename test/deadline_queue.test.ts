/** Many deadlines under one timer (src/util/deadline_queue.ts), on virtual time. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SimClock } from "../src/io/sim_clock.ts";
import { DeadlineQueue } from "../src/util/deadline_queue.ts";

function queue() {
  const clock = new SimClock();
  const due = new Map<number, number>();
  const fired: { id: number; nowMs: number }[] = [];
  const deadlines = new DeadlineQueue({
    clock,
    dueOf: (id) => due.get(id),
    onDue: (id, nowMs) => {
      due.delete(id);
      fired.push({ id, nowMs });
    },
  });
  const schedule = (id: number, atMs: number) => {
    due.set(id, atMs);
    deadlines.schedule(id, atMs);
  };
  return { clock, due, fired, deadlines, schedule };
}

test("deadlines fire in due order, each at or after its time, under one timer", () => {
  const { clock, fired, schedule } = queue();
  schedule(1, 30);
  schedule(2, 10);
  schedule(3, 20);
  assert.is(clock.pendingTimers(), 1);
  clock.advance(15);
  assert.equal(fired, [{ id: 2, nowMs: 10 }]); // virtual time stops at each timer's deadline
  clock.advance(100);
  assert.equal(fired.map((entry) => entry.id), [2, 3, 1]);
  for (const entry of fired) assert.ok(entry.nowMs >= { 1: 30, 2: 10, 3: 20 }[entry.id]!);
  assert.is(clock.pendingTimers(), 0);
});

test("a cancelled or moved deadline never fires at its old time", () => {
  const { clock, due, fired, schedule } = queue();
  schedule(1, 10);
  schedule(2, 20);
  due.delete(1); // cancelled: its entry is stale
  schedule(2, 50); // moved later
  clock.advance(30);
  assert.equal(fired, []);
  clock.advance(30);
  assert.equal(fired, [{ id: 2, nowMs: 50 }]);
});

test("an earlier deadline re-arms the timer sooner; clear() drops every entry and the timer", () => {
  const { clock, fired, deadlines, schedule } = queue();
  schedule(1, 100);
  schedule(2, 5);
  clock.advance(6);
  assert.equal(fired.map((entry) => entry.id), [2]);
  deadlines.clear();
  assert.is(clock.pendingTimers(), 0);
  assert.is(deadlines.size, 0);
  clock.advance(200);
  assert.equal(fired.map((entry) => entry.id), [2]);
});

test("a deadline scheduled while others fire is kept and fires at its own time", () => {
  const clock = new SimClock();
  const due = new Map<number, number>();
  const fired: number[] = [];
  const deadlines: DeadlineQueue = new DeadlineQueue({
    clock,
    dueOf: (id) => due.get(id),
    onDue: (id, nowMs) => {
      due.delete(id);
      fired.push(id);
      if (id === 1) {
        due.set(9, nowMs + 40);
        deadlines.schedule(9, nowMs + 40);
      }
    },
  });
  due.set(1, 10);
  deadlines.schedule(1, 10);
  clock.advance(10);
  assert.equal(fired, [1]);
  assert.is(clock.pendingTimers(), 1);
  clock.advance(39);
  assert.equal(fired, [1]);
  clock.advance(1);
  assert.equal(fired, [1, 9]);
});

test("thousands of deadlines in random order fire in due order, cancelled ones never", () => {
  const { clock, due, fired, schedule } = queue();
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const expected: { id: number; atMs: number }[] = [];
  for (let id = 1; id <= 5000; id++) {
    const atMs = 1 + Math.floor(random() * 10_000);
    schedule(id, atMs);
    if (id % 7 === 0) due.delete(id);
    else expected.push({ id, atMs });
  }
  clock.advance(20_000);
  assert.is(fired.length, expected.length);
  for (let index = 1; index < fired.length; index++) assert.ok(fired[index - 1]!.nowMs <= fired[index]!.nowMs);
  const firedAt = new Map(fired.map((entry) => [entry.id, entry.nowMs]));
  for (const { id, atMs } of expected) assert.is(firedAt.get(id), atMs);
});

test.run();
