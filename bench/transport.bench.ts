/**
 * Transport benchmark, run by hand: round trips main -> worker -> main.
 *   Node: npx tsc -p . && node dist/bench/transport.bench.js
 *   Deno: npx deno run -A bench/transport.bench.ts
 *
 * 1. Bursts (tinybench): send N messages in one turn, await all N echoes; N = 1, 100, 1000.
 *    "raw" posts each message alone (no batching); "microtask" and "immediate" go through
 *    PortTransport with that flush timing on both sides.
 * 2. Closed loop: 1000 requests in flight (started in 10 turns of 100), every echo triggers a new
 *    request, for LOOP_MS; reports round trips/s and the average batch size each side achieved:
 *    the measurement that chooses the default flush timing.
 */
import { once } from "node:events";
import { stdout } from "node:process";
import { Worker } from "node:worker_threads";
import { Bench } from "tinybench";
import { MessageType, type Message } from "../src/transport/message_types.ts";
import { type FlushTiming, PortTransport } from "../src/transport/port_transport.ts";
import type { EchoWorkerSetup } from "../test/fixtures/transport_echo_worker.ts";

const MAIN = 0;
const WORKER = 1;
const LOOP_MS = 1500;
const BURSTS = [1, 100, 1000] as const;
type Mode = "raw" | FlushTiming;

function fixtureUrl(): URL {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`../test/fixtures/transport_echo_worker${extension}`, import.meta.url);
}

interface Echo {
  /** Sends `count` messages in this turn; resolves when all echoes arrived. */
  burst(count: number): Promise<void>;
  close(): Promise<void>;
}

async function startWorker(mode: Mode): Promise<Worker> {
  const worker = new Worker(fixtureUrl());
  const ready = once(worker, "message");
  const setup: EchoWorkerSetup = mode === "raw" ? { self: WORKER, main: MAIN, ports: [], raw: true } : { self: WORKER, main: MAIN, ports: [], flush: mode };
  worker.postMessage(setup);
  await ready;
  return worker;
}

function request(sequence: number): Message {
  return { type: MessageType.requestGet, route: [MAIN], hops: [], sequence };
}

async function rawEcho(): Promise<Echo> {
  const worker = await startWorker("raw");
  let waiting = 0;
  let done: () => void = () => {};
  worker.on("message", () => {
    if (--waiting === 0) done();
  });
  return {
    burst(count) {
      waiting = count;
      const finished = new Promise<void>((resolve) => (done = resolve));
      for (let i = 0; i < count; i++) worker.postMessage(request(i));
      return finished;
    },
    async close() {
      await worker.terminate();
    },
  };
}

async function transportEcho(flush: FlushTiming): Promise<Echo & { transport: PortTransport }> {
  const worker = await startWorker(flush);
  const transport = new PortTransport({ self: MAIN, flush });
  let waiting = 0;
  let done: () => void = () => {};
  transport.onMessage(() => {
    if (--waiting === 0) done();
  });
  transport.connect(WORKER, worker);
  return {
    transport,
    burst(count) {
      waiting = count;
      const finished = new Promise<void>((resolve) => (done = resolve));
      for (let i = 0; i < count; i++) transport.send(WORKER, request(i));
      return finished;
    },
    async close() {
      transport.close();
      await worker.terminate();
    },
  };
}

async function bursts(): Promise<void> {
  stdout.write("| mode | in flight | round trips/s | mean burst |\n|---|---|---|---|\n");
  for (const mode of ["raw", "microtask", "immediate"] as const) {
    const echo = mode === "raw" ? await rawEcho() : await transportEcho(mode);
    for (const count of BURSTS) {
      const bench = new Bench({ time: 1000, warmupTime: 200 });
      bench.add(`${mode} x${count}`, () => echo.burst(count));
      await bench.run();
      const result = bench.tasks[0]?.result;
      if (result?.state !== "completed") throw new Error(`bench failed: ${mode} x${count} ended ${String(result?.state)}`);
      const meanMs = result.latency.mean;
      stdout.write(`| ${mode} | ${count} | ${Math.round((count * 1000) / meanMs).toLocaleString("en-US")} | ${(meanMs * 1000).toFixed(0)} us |\n`);
    }
    await echo.close();
  }
}

/** Closed loop with `inFlight` requests; every echo sends the next request from inside the handler. */
async function closedLoop(mode: Mode, inFlight: number): Promise<void> {
  const worker = await startWorker(mode);
  const transport = mode === "raw" ? undefined : new PortTransport({ self: MAIN, flush: mode });
  let completed = 0;
  let running = true;
  const next = () => {
    if (!running) return;
    if (transport === undefined) worker.postMessage(request(completed));
    else transport.send(WORKER, request(completed));
  };
  if (transport === undefined) {
    worker.on("message", () => {
      completed++;
      next();
    });
  } else {
    transport.onMessage(() => {
      completed++;
      next();
    });
    transport.connect(WORKER, worker);
  }
  for (let turn = 0; turn < 10; turn++) {
    for (let i = 0; i < inFlight / 10; i++) next();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const started = performance.now();
  const before = completed;
  await new Promise((resolve) => setTimeout(resolve, LOOP_MS));
  const rate = ((completed - before) * 1000) / (performance.now() - started);
  running = false;
  const stats = transport?.stats();
  const batch = stats === undefined ? "1" : `${stats.averageBatchSize.toFixed(1)} sent, ${(stats.messagesReceived / stats.batchesReceived).toFixed(1)} received`;
  stdout.write(`| ${mode} | ${inFlight} | ${Math.round(rate).toLocaleString("en-US")} | ${batch} |\n`);
  transport?.close();
  await worker.terminate();
}

stdout.write(`transport bench on ${typeof (globalThis as { Deno?: unknown }).Deno === "undefined" ? `Node ${process.version}` : "Deno"}\n\n`);
await bursts();
stdout.write("\n| closed loop | in flight | round trips/s | average batch (main) |\n|---|---|---|---|\n");
for (const mode of ["raw", "microtask", "immediate"] as const) {
  for (const inFlight of [100, 1000]) await closedLoop(mode, inFlight);
}
