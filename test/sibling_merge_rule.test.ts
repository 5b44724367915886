import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng, type Prng } from "../src/io/prng.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { loadMergeRule } from "../src/storage/merge_rule.ts";
import type { Version } from "../src/storage/version_set_format.ts";
import {
  type CausalContext,
  clockEntriesMax,
  type DottedVersionVector,
  emptyContext,
  join,
  sync,
  update,
} from "../src/version/dotted_version_vector.ts";
import { dominanceMergeRule, dominanceMergeRuleReference } from "../src/version/sibling_merge_rule.ts";
import { encodeVersion } from "../src/version/version_codec.ts";
import { openSimStore } from "./support/store_harness.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const merge = (versions: readonly Version[]): Version[] => dominanceMergeRule.merge(versions);

// ---- a simulated cluster: replicas, clients, lossy and reordered replication -------------------

/** A version as the simulation tracks it: its clock, its stored form, and its true causal history. */
interface Stamped {
  readonly clock: DottedVersionVector;
  readonly version: Version;
  /** Dots of every write causally before this one, and its own: ground truth, never pruned. */
  readonly history: ReadonlySet<string>;
}

interface Client {
  context: CausalContext;
  seen: ReadonlySet<string>;
}

interface SimulationOptions {
  readonly seed: number;
  readonly replicas: number;
  readonly clients: number;
  readonly pruneThreshold: number;
}

const dotKey = (clock: DottedVersionVector): string => `${clock.dot.actor}:${clock.dot.counter}`;
const text = new TextEncoder();

/**
 * One key replicated on `replicas` nodes (actor = replica index). Clients read from one or two
 * replicas, write through any replica with their last context (so often a stale one) or none; the
 * coordinator stamps, syncs locally and sends its whole version set to the others, and messages are
 * lost, duplicated and delivered in random order; anti-entropy exchanges whole sets. Every random
 * draw is independent of the state, so two simulations with one seed follow the same schedule.
 */
class Simulation {
  readonly replicas: Stamped[][];
  readonly created: Stamped[] = [];
  readonly snapshots: Version[][] = [];
  readonly #clients: Client[];
  readonly #pending: { to: number; versions: Stamped[] }[] = [];
  readonly #counters: number[];
  readonly #prng: Prng;
  readonly #pruneThreshold: number;
  #time = 1_700_000_000_000;

  constructor(options: SimulationOptions) {
    this.#prng = createPrng(options.seed);
    this.#pruneThreshold = options.pruneThreshold;
    this.replicas = Array.from({ length: options.replicas }, () => []);
    this.#counters = Array.from({ length: options.replicas }, () => 0);
    this.#clients = Array.from({ length: options.clients }, () => ({ context: emptyContext, seen: new Set<string>() }));
  }

  step(): void {
    const prng = this.#prng;
    this.#time += prng.nextInt(50);
    const action = prng.nextInt(100);
    if (action < 30) this.#read();
    else if (action < 60) this.#write();
    else if (action < 92) this.#deliver();
    else this.#antiEntropy(prng.nextInt(this.replicas.length), prng.nextInt(this.replicas.length));
    if (prng.chance(0.05)) this.snapshots.push(...this.replicas.map((replica) => replica.map((item) => item.version)));
  }

  #read(): void {
    const prng = this.#prng;
    const client = this.#clients[prng.nextInt(this.#clients.length)]!;
    const first = prng.nextInt(this.replicas.length);
    const second = prng.chance(0.5) ? prng.nextInt(this.replicas.length) : first;
    const siblings = sync(this.replicas[first]!, this.replicas[second]!);
    client.context = join(siblings.map((item) => item.clock));
    client.seen = new Set(siblings.flatMap((item) => [...item.history]));
  }

  #write(): void {
    const prng = this.#prng;
    const client = this.#clients[prng.nextInt(this.#clients.length)]!;
    const coordinator = prng.nextInt(this.replicas.length);
    const blind = prng.chance(0.1);
    const tombstone = prng.chance(0.15);
    const lost = this.replicas.map(() => prng.chance(0.15));
    const local = this.replicas[coordinator]!;
    const clock = update({
      context: blind ? emptyContext : client.context,
      actor: coordinator,
      local: local.map((item) => item.clock),
      timestampMs: this.#time,
      pruneThreshold: this.#pruneThreshold,
      // A per-node counter that only grows: the same dots in every run of one seed.
      counterFloor: ++this.#counters[coordinator]!,
    });
    const history = new Set(blind ? [] : client.seen);
    history.add(dotKey(clock));
    const value = tombstone ? null : text.encode(`value ${dotKey(clock)}`);
    const stamped: Stamped = { clock, version: { version: encodeVersion(clock), value }, history };
    this.created.push(stamped);
    this.replicas[coordinator] = sync(local, [stamped]);
    for (let to = 0; to < this.replicas.length; to++) {
      if (to !== coordinator && !lost[to]) this.#pending.push({ to, versions: this.replicas[coordinator]! });
    }
  }

  #deliver(): void {
    const prng = this.#prng;
    if (this.#pending.length === 0) return;
    const index = prng.nextInt(this.#pending.length);
    const message = this.#pending[index]!;
    if (!prng.chance(0.1)) this.#pending.splice(index, 1); // else: delivered again later
    this.replicas[message.to] = sync(this.replicas[message.to]!, message.versions);
  }

  #antiEntropy(a: number, b: number): void {
    const left = this.replicas[a]!;
    const right = this.replicas[b]!;
    this.replicas[a] = sync(left, right);
    this.replicas[b] = sync(right, left);
  }

  /** Delivers every message, then exchanges sets between all pairs until the replicas agree. */
  converge(): void {
    while (this.#pending.length > 0) {
      const message = this.#pending.shift()!;
      this.replicas[message.to] = sync(this.replicas[message.to]!, message.versions);
    }
    for (let round = 0; round < 20; round++) {
      for (let a = 0; a < this.replicas.length; a++) {
        for (let b = a + 1; b < this.replicas.length; b++) this.#antiEntropy(a, b);
      }
      const first = dotsOf(this.replicas[0]!);
      if (this.replicas.every((replica) => dotsOf(replica) === first)) return;
    }
    assert.unreachable("replicas did not converge after 20 anti-entropy rounds");
  }
}

function dotsOf(items: readonly Stamped[]): string {
  return items.map((item) => dotKey(item.clock)).sort().join(" ");
}

function keyOf(version: Version): string {
  const hex = (bytes: Uint8Array): string => [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex(version.version)}|${version.value === null ? "tombstone" : hex(version.value)}`;
}

function keysOf(versions: readonly Version[]): string[] {
  return versions.map(keyOf);
}

/** A random list of versions: some of every version written, or two replica snapshots and some more. */
function randomInput(prng: Prng, simulation: Simulation): Version[] {
  const picks = Array.from({ length: prng.nextInt(9) }, () => prng.pick(simulation.created).version);
  if (simulation.snapshots.length === 0 || prng.chance(0.5)) return picks;
  const input = [...prng.pick(simulation.snapshots), ...prng.pick(simulation.snapshots), ...picks];
  prng.shuffle(input);
  return input;
}

function runSimulation(options: SimulationOptions, steps: number): Simulation {
  const simulation = new Simulation(options);
  for (let i = 0; i < steps; i++) simulation.step();
  return simulation;
}

// ---- unit behaviour --------------------------------------------------------------------------

interface StampOptions {
  readonly context?: CausalContext;
  readonly actor: number;
  readonly local?: DottedVersionVector[];
  readonly timestampMs: number;
  readonly value: string | null;
}

function stamp(options: StampOptions): Version & { clock: DottedVersionVector } {
  const clock = update({
    context: options.context ?? emptyContext,
    actor: options.actor,
    local: options.local ?? [],
    timestampMs: options.timestampMs,
    pruneThreshold: clockEntriesMax,
  });
  return { clock, version: encodeVersion(clock), value: options.value === null ? null : text.encode(options.value) };
}

const valueText = (version: Version): string => (version.value === null ? "<tombstone>" : new TextDecoder().decode(version.value));

test("the rule keeps the versions no other version dominates, and a tombstone supersedes like a value", () => {
  const first = stamp({ actor: 0, timestampMs: 1, value: "first" });
  const concurrent = stamp({ actor: 1, timestampMs: 2, value: "concurrent" });
  const deleted = stamp({ context: join([first.clock]), actor: 2, timestampMs: 3, value: null });
  assert.equal(merge([first, concurrent, deleted]).map(valueText), ["<tombstone>", "concurrent"]);
  const context = join([deleted.clock, concurrent.clock]);
  const revived = stamp({ context, actor: 0, local: [first.clock], timestampMs: 4, value: "revived" });
  assert.equal(merge([deleted, revived, concurrent, first]).map(valueText), ["revived"]);
});

test("the rule keeps one copy of a version that arrives several times", () => {
  const only = stamp({ actor: 3, timestampMs: 1, value: "only" });
  const copy = { version: only.version.slice(), value: only.value!.slice() };
  assert.equal(merge([only, copy, only]).map(valueText), ["only"]);
});

test("the rule orders siblings newest first whatever the input order", () => {
  const siblings = [1, 2, 3, 4, 5].map((actor) => stamp({ actor, timestampMs: 100 * (6 - actor), value: `from ${actor}` }));
  const prng = createPrng(8);
  for (let i = 0; i < 20; i++) {
    const shuffled = [...siblings];
    prng.shuffle(shuffled);
    assert.equal(merge(shuffled).map(valueText), ["from 1", "from 2", "from 3", "from 4", "from 5"]);
  }
});

test("the rule refuses a blob that is not a version clock with a RangeError", async () => {
  await rejectsWithCode(() => merge([{ version: new Uint8Array([0, 0, 0, 1]), value: null }]), "LOOM_OUT_OF_RANGE", /decode version failed/);
});

test("the exported reference loads the rule, as a pool thread would", async () => {
  const rule = await loadMergeRule(dominanceMergeRuleReference);
  assert.is(rule, dominanceMergeRule);
  assert.is(dominanceMergeRuleReference.exportName, "dominanceMergeRule");
});

// ---- algebra over random histories -----------------------------------------------------------

test("the rule is idempotent, associative and order-independent over random 3-replica histories", () => {
  for (let seed = 1; seed <= 12; seed++) {
    const simulation = runSimulation({ seed, replicas: 3, clients: 4, pruneThreshold: clockEntriesMax }, 400);
    const prng = createPrng(seed * 1000);
    for (let round = 0; round < 150; round++) {
      const input = randomInput(prng, simulation);
      const merged = merge(input);
      const label = `seed ${seed} round ${round}`;
      assert.equal(keysOf(merge(merged)), keysOf(merged), `${label}: idempotent`);
      const shuffled = [...input];
      prng.shuffle(shuffled);
      assert.equal(keysOf(merge(shuffled)), keysOf(merged), `${label}: commutative`);
      const cut = prng.nextInt(input.length + 1);
      const left = input.slice(0, cut);
      const right = input.slice(cut);
      assert.equal(keysOf(merge([...left, ...merge(right)])), keysOf(merged), `${label}: associative (right)`);
      assert.equal(keysOf(merge([...merge(left), ...right])), keysOf(merged), `${label}: associative (left)`);
    }
  }
});

test("one or two versions merge exactly as the general rule merges them (its short path changes nothing)", () => {
  for (let seed = 1; seed <= 6; seed++) {
    const simulation = runSimulation({ seed, replicas: 3, clients: 4, pruneThreshold: clockEntriesMax }, 300);
    const prng = createPrng(seed * 77);
    for (let round = 0; round < 400; round++) {
      const a = prng.pick(simulation.created).version;
      const b = prng.chance(0.2) ? a : prng.pick(simulation.created).version;
      // Three inputs with an exact duplicate take the general path, and the duplicate counts once.
      assert.equal(keysOf(merge([a, b])), keysOf(merge([a, b, a])), `seed ${seed} round ${round}: two`);
      assert.equal(keysOf(merge([b, a])), keysOf(merge([a, b, b])), `seed ${seed} round ${round}: two, other order`);
      assert.equal(keysOf(merge([a])), keysOf(merge([a, a, a])), `seed ${seed} round ${round}: one`);
    }
  }
});

test("replicas that sync agree with the rule, and no write is lost", () => {
  for (let seed = 20; seed <= 30; seed++) {
    const simulation = runSimulation({ seed, replicas: 3, clients: 5, pruneThreshold: clockEntriesMax }, 400);
    for (const replica of simulation.replicas) {
      assert.equal(keysOf(merge(replica.map((item) => item.version))).sort(), keysOf(replica.map((item) => item.version)).sort());
    }
    simulation.converge();
    const final = simulation.replicas[0]!;
    assert.equal(keysOf(merge(simulation.created.map((item) => item.version))).sort(), keysOf(final.map((item) => item.version)).sort());
    for (const written of simulation.created) {
      const key = dotKey(written.clock);
      const kept = final.some((item) => item.history.has(key));
      assert.ok(kept, `seed ${seed}: write ${key} is neither kept nor superseded by a write that saw it`);
    }
    // Every survivor is truly concurrent with every other: no false siblings without pruning.
    for (const a of final) {
      for (const b of final) if (a !== b) assert.not.ok(b.history.has(dotKey(a.clock)), `seed ${seed}: false sibling`);
    }
  }
});

test("with pruning the rule stays idempotent and order-independent, and grouping adds only superseded siblings", () => {
  for (let seed = 40; seed <= 50; seed++) {
    const simulation = runSimulation({ seed, replicas: 4, clients: 4, pruneThreshold: 1 + (seed % 2) }, 400);
    const histories = new Map(simulation.created.map((item) => [keyOf(item.version), item.history]));
    const prng = createPrng(seed);
    for (let round = 0; round < 150; round++) {
      const input = randomInput(prng, simulation);
      const merged = merge(input);
      assert.equal(keysOf(merge(merged)), keysOf(merged));
      const shuffled = [...input];
      prng.shuffle(shuffled);
      assert.equal(keysOf(merge(shuffled)), keysOf(merged));
      const cut = prng.nextInt(input.length + 1);
      const grouped = keysOf(merge([...input.slice(0, cut), ...merge(input.slice(cut))]));
      const flat = keysOf(merged);
      for (const key of flat) assert.ok(grouped.includes(key), "grouping dropped a version the flat merge keeps");
      for (const key of grouped) {
        if (flat.includes(key)) continue;
        const dot = [...histories.get(key)!].at(-1)!;
        assert.ok(flat.some((kept) => histories.get(kept)!.has(dot)), "an extra sibling is not an ancestor of a kept version");
      }
    }
  }
});

test("pruning only ever adds siblings: every replica keeps a superset of the unpruned run's versions", () => {
  for (let seed = 60; seed <= 75; seed++) {
    const options = { seed, replicas: 4, clients: 5 };
    const full = new Simulation({ ...options, pruneThreshold: clockEntriesMax });
    const pruned = new Simulation({ ...options, pruneThreshold: 1 + (seed % 3) });
    for (let step = 0; step < 400; step++) {
      full.step();
      pruned.step();
      for (let r = 0; r < options.replicas; r++) {
        const prunedDots = new Set(pruned.replicas[r]!.map((item) => dotKey(item.clock)));
        for (const item of full.replicas[r]!) {
          assert.ok(prunedDots.has(dotKey(item.clock)), `seed ${seed} step ${step}: pruning lost ${dotKey(item.clock)}`);
        }
      }
    }
    pruned.converge();
    for (const written of pruned.created) {
      const key = dotKey(written.clock);
      assert.ok(pruned.replicas[0]!.some((item) => item.history.has(key)), `seed ${seed}: pruning lost write ${key}`);
    }
    for (const item of pruned.created) assert.ok(item.clock.past.length <= 1 + (seed % 3));
  }
});

// ---- inside the storage engine ---------------------------------------------------------------

test("a store using the rule resolves merge records across flushes and compaction like one merge", async () => {
  const simulation = runSimulation({ seed: 99, replicas: 3, clients: 4, pruneThreshold: clockEntriesMax }, 300);
  const store = await openSimStore(new SimFileSystem(createPrng(99)), { mergeRule: dominanceMergeRuleReference });
  const expected = keysOf(merge(simulation.created.map((item) => item.version))).sort();
  for (const [index, item] of simulation.created.entries()) {
    await store.merge("key", [item.version]);
    if (index % 25 === 24) await store.flush();
  }
  assert.equal(keysOf(store.get("key")).sort(), expected);
  await store.compact();
  assert.equal(keysOf(store.get("key")).sort(), expected);
  await store.close();
});

test.run();
