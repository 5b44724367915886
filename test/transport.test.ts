import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { suite, test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import { isMessage, MessageType } from "../src/transport/message_types.ts";
import { PortTransport } from "../src/transport/port_transport.ts";
import { SimNetwork, type SimNetworkOptions } from "../src/transport/sim_transport.ts";
import type { Transport } from "../src/transport/transport.ts";
import { transportLimits } from "../src/transport/transport_limits.ts";
import { ClosedError, LoomRangeError } from "../src/util/errors.ts";
import type { EchoWorkerSetup } from "./fixtures/transport_echo_worker.ts";
import { installRouter, type RoutedMessage } from "./fixtures/transport_router.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const MAIN = 0;
const PEERS = [1, 2, 3] as const;
const WAIT_TIMEOUT_MS = 10_000;

interface Arrival {
  readonly from: number;
  readonly message: RoutedMessage;
}

/** One network under test: `main` (peer 0) talks to PEERS, which forward along routes. */
interface Harness {
  readonly main: Transport;
  readonly received: Arrival[];
  /** Runs the network until at least `count` messages reached main; throws if they never do. */
  waitFor(count: number): Promise<void>;
  /** Lets every message still on its way arrive (so a test can check that nothing extra came). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

function routed(route: readonly number[], fields: Record<string, unknown> = {}): RoutedMessage {
  return { type: MessageType.replicate, route, hops: [], ...fields };
}

function fixtureUrl(): URL {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./fixtures/transport_echo_worker${extension}`, import.meta.url);
}

/** Three real worker threads, a MessageChannel between each pair, main connected to each worker. */
async function realHarness(options: { outboxMessagesMax?: number } = {}): Promise<Harness> {
  const main = new PortTransport({ self: MAIN, ...options });
  const received: Arrival[] = [];
  main.onMessage((from, message) => received.push({ from, message: message as RoutedMessage }));
  const links = new Map<number, { peer: number; port: MessagePort }[]>(PEERS.map((peer) => [peer, []]));
  for (const a of PEERS) {
    for (const b of PEERS) {
      if (a >= b) continue;
      const channel = new MessageChannel();
      links.get(a)?.push({ peer: b, port: channel.port1 });
      links.get(b)?.push({ peer: a, port: channel.port2 });
    }
  }
  const workers = PEERS.map(() => new Worker(fixtureUrl()));
  try {
    await Promise.all(
      workers.map(async (worker, index) => {
        const self = PEERS[index] as number;
        const ports = links.get(self) ?? [];
        const ready = once(worker, "message");
        const setup: EchoWorkerSetup = { self, main: MAIN, ports };
        worker.postMessage(setup, ports.map((link) => link.port));
        await ready;
        main.connect(self, worker);
      }),
    );
  } catch (error: unknown) {
    await Promise.all(workers.map((worker) => worker.terminate()));
    throw error;
  }
  return {
    main,
    received,
    async waitFor(count) {
      const deadline = Date.now() + WAIT_TIMEOUT_MS;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`waited for ${count} messages, ${received.length} arrived`);
        await sleep(1);
      }
    },
    async settle() {
      await sleep(50);
    },
    async close() {
      main.close();
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

function simHarness(options: Partial<SimNetworkOptions> = {}): Harness & { readonly network: SimNetwork } {
  const network = new SimNetwork({ prng: createPrng(42), minDelayMs: 1, maxDelayMs: 25, ...options });
  const main = network.endpoint(MAIN);
  const received: Arrival[] = [];
  main.onMessage((from, message) => received.push({ from, message: message as RoutedMessage }));
  for (const peer of PEERS) installRouter(network.endpoint(peer));
  return {
    network,
    main,
    received,
    async waitFor(count) {
      network.deliverAll();
      if (received.length < count) throw new Error(`waited for ${count} messages, ${received.length} arrived`);
    },
    async settle() {
      network.deliverAll();
    },
    async close() {
      main.close();
    },
  };
}

/** Sequence numbers of the arrivals whose hops equal `route` minus its last element, in arrival order. */
function sequencesAlong(received: readonly Arrival[], hops: readonly number[]): number[] {
  return received.filter((a) => a.message.hops.join(",") === hops.join(",")).map((a) => a.message["sequence"] as number);
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

/** The conformance suite: the same behaviour from the real and the simulated transport. */
function conformance(name: string, makeHarness: () => Promise<Harness>): void {
  const it = suite(`${name} transport`);
  const withHarness = (body: (harness: Harness) => Promise<void>) => async () => {
    const harness = await makeHarness();
    try {
      await body(harness);
    } finally {
      await harness.close();
    }
  };

  it("every message sent to a peer comes back exactly once, in send order", withHarness(async (harness) => {
    const count = 200;
    for (const sequence of range(count)) {
      for (const peer of PEERS) harness.main.send(peer, routed([MAIN], { sequence }));
    }
    await harness.waitFor(count * PEERS.length);
    await harness.settle();
    assert.is(harness.received.length, count * PEERS.length);
    for (const peer of PEERS) {
      assert.equal(sequencesAlong(harness.received, [peer]), range(count), `echoes from peer ${peer}`);
      assert.ok(harness.received.filter((a) => a.message.hops[0] === peer).every((a) => a.from === peer));
    }
  }));

  it("messages forwarded between peers keep their order on every hop", withHarness(async (harness) => {
    const routes = [[1, 2], [2, 3], [3, 1], [1, 3, 2], [3, 2, 1]];
    const count = 100;
    for (const sequence of range(count)) {
      for (const route of routes) harness.main.send(route[0] as number, routed([...route.slice(1), MAIN], { sequence }));
    }
    await harness.waitFor(count * routes.length);
    await harness.settle();
    assert.is(harness.received.length, count * routes.length);
    for (const route of routes) {
      assert.equal(sequencesAlong(harness.received, route), range(count), `route ${route.join("->")}`);
    }
  }));

  it("Uint8Array payloads of any size arrive intact", withHarness(async (harness) => {
    const sizes = [0, 1, 100, 4096, 64 * 1024];
    const payload = (size: number) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff);
    sizes.forEach((size, sequence) => harness.main.send(1, routed([2, MAIN], { sequence, payload: payload(size) })));
    await harness.waitFor(sizes.length);
    sizes.forEach((size, index) => {
      const got = harness.received[index]?.message["payload"];
      assert.instance(got, Uint8Array);
      assert.equal(got, payload(size), `payload of ${size} bytes`);
    });
  }));

  it("a send to an unknown peer is dropped and counted, never thrown", withHarness(async (harness) => {
    harness.main.send(99, routed([MAIN], { sequence: 0 }));
    harness.main.send(1, routed([MAIN], { sequence: 1 }));
    await harness.waitFor(1);
    await harness.settle();
    assert.equal(harness.received.map((a) => a.message["sequence"]), [1]);
    const stats = harness.main.stats();
    assert.is(stats.messagesDroppedNoPeer, 1);
    assert.is(stats.messagesSent, 1);
    assert.is(stats.messagesReceived, 1);
  }));

  it("a closed transport refuses sends with ClosedError and closes idempotently", withHarness(async (harness) => {
    harness.main.close();
    harness.main.close();
    await rejectsWithCode(() => harness.main.send(1, routed([MAIN])), "LOOM_CLOSED");
  }));

  it.run();
}

conformance("port", () => realHarness());
conformance("sim", async () => simHarness());

// ---------------------------------------------------------------------------------------------
// Port transport only: batching and the outbox bound.

const port = suite("port transport batching");

port("1000 sends in one turn leave as one postMessage per destination and come back in few batches", async () => {
  const harness = await realHarness();
  try {
    const count = 1000;
    for (const sequence of range(count)) {
      for (const peer of PEERS) harness.main.send(peer, routed([MAIN], { sequence }));
    }
    await harness.waitFor(count * PEERS.length);
    const stats = harness.main.stats();
    assert.is(stats.batchesSent, PEERS.length);
    assert.is(stats.averageBatchSize, count);
    assert.ok(stats.batchesReceived <= 2 * PEERS.length, `${stats.batchesReceived} batches received`);
    for (const peer of PEERS) assert.equal(sequencesAlong(harness.received, [peer]), range(count));
  } finally {
    await harness.close();
  }
});

port("sends in separate turns go out as separate batches", async () => {
  const harness = await realHarness();
  try {
    harness.main.send(1, routed([MAIN], { sequence: 0 }));
    await sleep(0);
    harness.main.send(1, routed([MAIN], { sequence: 1 }));
    await harness.waitFor(2);
    assert.is(harness.main.stats().batchesSent, 2);
  } finally {
    await harness.close();
  }
});

port("an outbox past its limit drops the excess and counts it", async () => {
  const harness = await realHarness({ outboxMessagesMax: 10 });
  try {
    for (const sequence of range(15)) harness.main.send(1, routed([MAIN], { sequence }));
    await harness.waitFor(10);
    await harness.settle();
    assert.equal(sequencesAlong(harness.received, [1]), range(10));
    const stats = harness.main.stats();
    assert.is(stats.messagesDroppedOutboxFull, 5);
    assert.is(stats.messagesSent, 10);
  } finally {
    await harness.close();
  }
});

port("options past their limits are refused naming the field", async () => {
  await rejectsWithCode(() => new PortTransport({ self: 0, outboxMessagesMax: 0 }), "LOOM_OUT_OF_RANGE", /outboxMessagesMax is number 0/);
  await rejectsWithCode(() => new PortTransport({ self: 0, outboxMessagesMax: transportLimits.outboxMessagesMax + 1 }), "LOOM_OUT_OF_RANGE", /outboxMessagesMax/);
  const transport = new PortTransport({ self: 0 });
  const channel = new MessageChannel();
  transport.connect(1, channel.port1);
  await rejectsWithCode(() => transport.connect(1, channel.port1), "LOOM_OUT_OF_RANGE", /peer 1 is already connected/);
  transport.close();
  channel.port1.close();
  channel.port2.close();
});

port.run();

// ---------------------------------------------------------------------------------------------
// Simulated network only: faults and determinism.

const sim = suite("sim transport faults");

/** Every node sends `count` messages to every other node; returns the delivery trace. */
function chatter(options: Partial<SimNetworkOptions>, count = 50): string[] {
  const network = new SimNetwork({ prng: createPrng(1), minDelayMs: 1, maxDelayMs: 50, ...options });
  const trace: string[] = [];
  const nodes = [0, 1, 2, 3];
  const endpoints = nodes.map((node) => network.endpoint(node));
  for (const endpoint of endpoints) {
    endpoint.onMessage((from, message) => trace.push(`${network.nowMs()} ${from}->${endpoint.self} #${String(message["sequence"])}`));
  }
  for (const sequence of range(count)) {
    for (const endpoint of endpoints) {
      for (const to of nodes) if (to !== endpoint.self) endpoint.send(to, { type: MessageType.gossip, sequence });
    }
  }
  network.deliverAll();
  return trace;
}

sim("the same seed replays the same deliveries at the same times; another seed does not", () => {
  const options = { lossProbability: 0.2 };
  const first = chatter({ ...options, prng: createPrng(7) });
  assert.equal(chatter({ ...options, prng: createPrng(7) }), first);
  assert.not.equal(chatter({ ...options, prng: createPrng(8) }), first);
  assert.ok(first.length > 400 && first.length < 600, `${first.length} of 600 delivered at 20% loss`);
});

sim("delays stay within [minDelayMs, maxDelayMs] and never reorder a pair", () => {
  const network = new SimNetwork({ prng: createPrng(3), minDelayMs: 5, maxDelayMs: 40 });
  const sender = network.endpoint(0);
  const delays: number[] = [];
  const sequences: number[] = [];
  network.endpoint(1).onMessage((_from, message) => {
    delays.push(network.nowMs() - (message["sentMs"] as number));
    sequences.push(message["sequence"] as number);
  });
  for (const sequence of range(500)) {
    sender.send(1, { type: MessageType.hint, sequence, sentMs: network.nowMs() });
    if (sequence % 7 === 0) network.deliverUntil(network.nowMs() + 3);
  }
  network.deliverAll();
  assert.equal(sequences, range(500));
  assert.ok(Math.min(...delays) >= 5 && Math.max(...delays) <= 40, `delays ${Math.min(...delays)}..${Math.max(...delays)}`);
  assert.ok(new Set(delays).size > 10, "delays vary");
});

sim("lost messages are counted and never delivered", () => {
  const all = simHarness({ lossProbability: 1 });
  for (const sequence of range(20)) all.main.send(1, routed([MAIN], { sequence }));
  all.network.deliverAll();
  assert.is(all.received.length, 0);
  assert.is(all.main.stats().messagesLost, 20);
  assert.is(all.network.stats().lost, 20);

  const half = simHarness({ lossProbability: 0.5 });
  for (const sequence of range(200)) half.main.send(1, { type: MessageType.hint, route: [], hops: [], sequence });
  half.network.deliverAll();
  const { delivered, lost } = half.network.stats();
  assert.is(delivered + lost, 200);
  assert.ok(lost > 60 && lost < 140, `${lost} of 200 lost`);
});

sim("a partition drops messages across groups until heal, both ways", () => {
  const harness = simHarness();
  harness.network.partition([MAIN, 1], [2, 3]);
  for (const peer of PEERS) harness.main.send(peer, routed([MAIN], { sequence: 0 }));
  harness.network.deliverAll();
  assert.equal(harness.received.map((a) => a.from), [1]);
  assert.is(harness.network.stats().droppedPartition, 2);
  harness.main.send(1, routed([3, MAIN], { sequence: 1 })); // 1 -> 3 crosses the cut
  harness.network.deliverAll();
  assert.is(harness.received.length, 1);
  harness.network.heal();
  for (const peer of PEERS) harness.main.send(peer, routed([MAIN], { sequence: 2 }));
  harness.network.deliverAll();
  assert.equal(harness.received.slice(1).map((a) => a.from).sort(), [1, 2, 3]);
});

sim("a message in flight when a partition starts is dropped at delivery", () => {
  const harness = simHarness();
  harness.main.send(2, routed([MAIN], { sequence: 0 }));
  harness.network.partition([2], [MAIN]);
  harness.network.deliverAll();
  assert.is(harness.received.length, 0);
  assert.is(harness.network.stats().droppedPartition, 1);
});

sim("a crash drops in-flight messages to and from the node; a restart gives a fresh endpoint", async () => {
  const harness = simHarness();
  const network = harness.network;
  for (const sequence of range(5)) harness.main.send(2, routed([MAIN], { sequence }));
  network.crash(2);
  assert.is(network.stats().droppedCrash, 5);
  harness.main.send(2, routed([MAIN], { sequence: 5 }));
  assert.is(harness.main.stats().messagesDroppedNoPeer, 1);
  network.deliverAll();
  assert.is(harness.received.length, 0);

  const restarted = network.restart(2);
  installRouter(restarted);
  harness.main.send(2, routed([MAIN], { sequence: 6 }));
  network.deliverAll();
  assert.equal(harness.received.map((a) => a.message["sequence"]), [6]);
  await rejectsWithCode(() => network.endpoint(2), "LOOM_OUT_OF_RANGE");
});

sim("a crashed node's old endpoint cannot send", async () => {
  const network = new SimNetwork({ prng: createPrng(5) });
  const old = network.endpoint(1);
  network.endpoint(0).onMessage(() => assert.unreachable("no message expected"));
  old.send(0, { type: MessageType.gossip });
  network.crash(1);
  assert.ok(old.closed);
  await rejectsWithCode(() => old.send(0, { type: MessageType.gossip }), "LOOM_CLOSED");
  network.deliverAll();
  assert.is(network.stats().droppedCrash, 1);
});

sim("a sent message is copied: later mutation by the sender is not seen", () => {
  const harness = simHarness();
  const payload = new Uint8Array([1, 2, 3]);
  harness.main.send(1, routed([MAIN], { payload }));
  payload[0] = 9;
  harness.network.deliverAll();
  assert.equal(harness.received[0]?.message["payload"], new Uint8Array([1, 2, 3]));
});

sim("invalid options are refused naming the field", async () => {
  const prng = createPrng(1);
  await rejectsWithCode(() => new SimNetwork({ prng, minDelayMs: 10, maxDelayMs: 5 }), "LOOM_OUT_OF_RANGE", /maxDelayMs is number 5/);
  await rejectsWithCode(() => new SimNetwork({ prng, minDelayMs: -1 }), "LOOM_OUT_OF_RANGE", /minDelayMs/);
  await rejectsWithCode(() => new SimNetwork({ prng, lossProbability: 1.5 }), "LOOM_OUT_OF_RANGE", /lossProbability/);
  const network = new SimNetwork({ prng });
  network.deliverUntil(10);
  await rejectsWithCode(() => network.deliverUntil(5), "LOOM_OUT_OF_RANGE", /nowMs is number 5/);
});

sim.run();

test("message type numbers are distinct, non-zero, and recognised by isMessage", () => {
  const numbers = Object.values(MessageType);
  assert.is(new Set(numbers).size, numbers.length);
  assert.not.ok(numbers.includes(0 as never));
  assert.ok(isMessage({ type: MessageType.replicate }));
  assert.not.ok(isMessage({ type: 0 }));
  assert.not.ok(isMessage({ type: 999 }));
  assert.not.ok(isMessage(null));
});

test.run();
