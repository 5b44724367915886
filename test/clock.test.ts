import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RealClock } from "../src/io/real_clock.ts";
import { SimClock } from "../src/io/sim_clock.ts";
import { rejectsWithCode } from "./support/assertions.ts";

test("a sim clock starts at its start time and moves only when advanced", () => {
  const clock = new SimClock({ startMs: 100 });
  assert.is(clock.nowMs(), 100);
  clock.setTimer(5, () => {});
  assert.is(clock.nowMs(), 100);
  clock.advance(7.5);
  assert.is(clock.nowMs(), 107.5);
  assert.is(new SimClock().nowMs(), 0);
});

test("advance runs due timers in deadline order, equal deadlines in the order they were set", () => {
  const clock = new SimClock();
  const fired: string[] = [];
  clock.setTimer(30, () => fired.push("c@30"));
  clock.setTimer(10, () => fired.push("a@10"));
  clock.setTimer(20, () => fired.push("b1@20"));
  clock.setTimer(20, () => fired.push("b2@20"));
  clock.setTimer(0, () => fired.push("zero"));
  clock.setTimer(20, () => fired.push("b3@20"));
  assert.is(clock.advance(25), 5);
  assert.equal(fired, ["zero", "a@10", "b1@20", "b2@20", "b3@20"]);
  assert.is(clock.pendingTimers(), 1);
  clock.advance(5);
  assert.equal(fired.at(-1), "c@30");
});

test("a timer callback sees the clock at its own deadline, and time ends at the advance target", () => {
  const clock = new SimClock();
  const seen: number[] = [];
  clock.setTimer(4, () => seen.push(clock.nowMs()));
  clock.setTimer(9, () => seen.push(clock.nowMs()));
  clock.advance(50);
  assert.equal(seen, [4, 9]);
  assert.is(clock.nowMs(), 50);
});

test("timers set by a callback run in the same advance when they fall due within it", () => {
  const clock = new SimClock();
  const fired: number[] = [];
  clock.setTimer(10, () => {
    fired.push(clock.nowMs());
    clock.setTimer(5, () => fired.push(clock.nowMs()));
    clock.setTimer(50, () => fired.push(clock.nowMs()));
  });
  clock.advance(20);
  assert.equal(fired, [10, 15]);
  assert.is(clock.pendingTimers(), 1);
  assert.is(clock.nextDeadlineMs(), 60);
});

test("a cleared timer never fires, and clearing twice or after firing is harmless", () => {
  const clock = new SimClock();
  const fired: string[] = [];
  const cleared = clock.setTimer(10, () => fired.push("cleared"));
  const kept = clock.setTimer(10, () => fired.push("kept"));
  clock.clearTimer(cleared);
  clock.clearTimer(cleared);
  assert.is(clock.pendingTimers(), 1);
  clock.advance(10);
  clock.clearTimer(kept);
  assert.equal(fired, ["kept"]);
  assert.is(clock.pendingTimers(), 0);
});

test("a handle from another clock does not clear this clock's timer", () => {
  const clock = new SimClock();
  const other = new SimClock();
  let fired = false;
  clock.setTimer(1, () => {
    fired = true;
  });
  clock.clearTimer(other.setTimer(1, () => {}));
  clock.advance(1);
  assert.ok(fired);
});

test("many set-and-clear cycles keep firing order correct", () => {
  const clock = new SimClock();
  const fired: number[] = [];
  for (let i = 0; i < 1000; i++) {
    clock.clearTimer(clock.setTimer(i, () => fired.push(-1)));
    if (i % 10 === 0) clock.setTimer(1000 - i, () => fired.push(1000 - i));
  }
  clock.runUntilIdle();
  assert.is(fired.length, 100);
  assert.equal(fired, [...fired].sort((a, b) => a - b));
  assert.not.ok(fired.includes(-1));
});

test("runNext jumps to the earliest timer and reports when none is left", () => {
  const clock = new SimClock();
  clock.setTimer(40, () => {});
  assert.is(clock.runNext(), true);
  assert.is(clock.nowMs(), 40);
  assert.is(clock.runNext(), false);
  assert.is(clock.nowMs(), 40);
});

test("runUntilIdle runs every timer in order and stops at the last deadline", () => {
  const clock = new SimClock();
  const fired: number[] = [];
  for (const delay of [300, 100, 200]) clock.setTimer(delay, () => fired.push(delay));
  assert.is(clock.runUntilIdle(), 3);
  assert.equal(fired, [100, 200, 300]);
  assert.is(clock.nowMs(), 300);
  assert.is(clock.pendingTimers(), 0);
  assert.is(clock.nextDeadlineMs(), undefined);
});

test("runUntilIdle gives up on timers that reschedule forever", () => {
  const clock = new SimClock();
  const again = (): void => {
    clock.setTimer(1, again);
  };
  clock.setTimer(1, again);
  assert.throws(() => clock.runUntilIdle({ timerCountMax: 100 }), /100 timers ran and 1 are still pending/);
});

test("a sim clock refuses negative or non-finite delays", async () => {
  const clock = new SimClock();
  await rejectsWithCode(() => clock.setTimer(-1, () => {}), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => clock.setTimer(Number.NaN, () => {}), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => clock.advance(-5), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => clock.advance(Number.POSITIVE_INFINITY), "LOOM_OUT_OF_RANGE");
});

/**
 * Real timers are unref'd, so a test that only awaits one would let the runtime exit mid-test:
 * hold the event loop open with an ordinary timer while `body` runs.
 */
async function keepingProcessAlive<T>(body: () => Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    return await body();
  } finally {
    clearInterval(keepAlive);
  }
}

test("the real clock is monotonic and fires a timer after its delay", async () => {
  const clock = new RealClock();
  const start = clock.nowMs();
  const firedAt = await keepingProcessAlive(
    () => new Promise<number>((resolve) => clock.setTimer(20, () => resolve(clock.nowMs()))),
  );
  assert.ok(firedAt - start >= 15, `fired after ${firedAt - start} ms`);
  assert.is(clock.pendingTimers(), 0);
});

test("a cleared real timer never fires", async () => {
  const clock = new RealClock();
  let fired = false;
  const handle = clock.setTimer(5, () => {
    fired = true;
  });
  clock.clearTimer(handle);
  assert.is(clock.pendingTimers(), 0);
  await keepingProcessAlive(() => new Promise<void>((resolve) => clock.setTimer(30, resolve)));
  assert.not.ok(fired);
});

test("a pending real timer does not keep the process alive", () => {
  // A child process sets a one-minute timer and must exit at once. Runs on Node (compiled .js)
  // and on Deno (.ts sources) alike.
  const extension = import.meta.url.endsWith(".ts") ? "ts" : "js";
  const moduleUrl = new URL(`../src/io/real_clock.${extension}`, import.meta.url).href;
  const script = `const { RealClock } = await import(${JSON.stringify(moduleUrl)}); new RealClock().setTimer(60000, () => {});`;
  const isDeno = "Deno" in globalThis;
  const args = isDeno ? ["eval", script] : ["--input-type=module", "-e", script];
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { timeout: 20_000, encoding: "utf8" });
  assert.is(result.status, 0, `child exited with ${result.status}: ${result.stderr}`);
  assert.ok(performance.now() - started < 15_000);
});

test.run();
