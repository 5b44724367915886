/**
 * One life of a node, from start to close: what both shells (the node worker, workers/node.ts, and
 * the simulator, src/sim/sim_node_host.ts) do to run a node, written once so that the simulator
 * tests what the threads run. Opening: the node's store in its directory, its hint store beside
 * it, its counter lease and its actor (node_actor.ts), then the node core. Closing: the core
 * stops, both stores close, and the clean-end rule decides whether the next life keeps the actor.
 *
 * Pure over the injected FileSystem, Clock, StorageJobs and Transport.
 */
import { buildTrees, treeBuildFolderReference, type TreeBuild, type TreeBuildParams } from "../antientropy/tree_build.ts";
import { HINTS_DIRECTORY, hintMemtableBytes, HintStore } from "../handoff/hint_store.ts";
import type { Clock } from "../io/clock.ts";
import { joinPath, type FileSystem } from "../io/file_system.ts";
import type { Prng } from "../io/prng.ts";
import type { StorageJobs } from "../storage/storage_jobs.ts";
import { Store } from "../storage/store.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import type { Transport } from "../transport/transport.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { dominanceMergeRuleReference } from "../version/sibling_merge_rule.ts";
import { CounterLease } from "./counter_lease.ts";
import { NodeActor } from "./node_actor.ts";
import { NodeCore } from "./node_core.ts";
import type { NodeSettings, RingSpec } from "./node_messages.ts";

export interface NodeLifeOptions {
  readonly nodeId: number;
  /** The node's store directory (it exists); the hint store lives in its HINTS_DIRECTORY. */
  readonly directory: string;
  readonly fs: FileSystem;
  readonly clock: Clock;
  /** Flushes, compactions and scans of both stores; closed with the node's main store. */
  readonly jobs: StorageJobs;
  readonly fsync: FsyncPolicy;
  /** The main store's memtable arena; the hint store takes a fraction of it. */
  readonly memtableBytes: number;
  /** Connects the node's data-plane endpoint: called once its stores are open, right before the core starts. */
  readonly connect: () => Transport;
  readonly signer: ContextSigner;
  readonly prng: Prng;
  /** This life's gossip generation: higher than every earlier life's. */
  readonly generation: number;
  readonly settings: NodeSettings;
  /** What the others last gossiped, as the main thread knew it at the start. @default [] */
  readonly gossipTable?: readonly number[];
  /** A ring change's cleanup this node still owes: run before `open` resolves (before it serves). */
  readonly cleanup?: { readonly ring: RingSpec; readonly keysPerSecond: number; readonly freshActor: number } | undefined;
  /** The actor this life takes if the last one did not end cleanly (never handed out before). */
  readonly freshActor: number;
  /** Fresh actors for the writes this life coordinates as a fallback. */
  readonly fallbackActors: readonly number[];
  /**
   * Whether anti-entropy's tree rebuilds read a pinned snapshot in the jobs' pool (the worker) or
   * fold the store in this thread (the simulator, whose jobs run inline). A failed store, which
   * cannot freeze its memtable but no longer changes, is always folded in this thread.
   */
  readonly treeScansInPool: boolean;
}

export class NodeLife {
  readonly core: NodeCore;
  readonly store: Store;
  readonly hintStore: Store;
  readonly #actor: NodeActor;
  #closing: Promise<boolean> | undefined;

  private constructor(parts: { core: NodeCore; store: Store; hintStore: Store; actor: NodeActor }) {
    this.core = parts.core;
    this.store = parts.store;
    this.hintStore = parts.hintStore;
    this.#actor = parts.actor;
  }

  /**
   * Opens the node's stores, lease and actor and starts its core. Rejects with the store's typed
   * error (LockedError, CorruptionError, IoError) if one cannot open; nothing stays open then.
   */
  static async open(options: NodeLifeOptions): Promise<NodeLife> {
    const { fs, clock, jobs, fsync } = options;
    const common = { fs, clock, fsync, mergeRule: dominanceMergeRuleReference };
    const store = await Store.open({ ...common, directory: options.directory, jobs, ownsJobs: true, memtableBytes: options.memtableBytes });
    let hintStore: Store;
    let lease: CounterLease;
    let actor: NodeActor;
    try {
      const hintsDirectory = joinPath(options.directory, HINTS_DIRECTORY);
      fs.makeDirectory(hintsDirectory);
      // Hints are few and short-lived: a fraction of the node's memtable is plenty.
      hintStore = await Store.open({ ...common, directory: hintsDirectory, jobs, ownsJobs: false, memtableBytes: hintMemtableBytes(options.memtableBytes) });
      try {
        lease = CounterLease.open(fs, options.directory);
        actor = NodeActor.start(fs, options.directory, () => options.freshActor);
      } catch (error) {
        await hintStore.close().catch(() => {});
        throw error;
      }
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
    const scanTrees = (params: TreeBuildParams): Promise<TreeBuild> =>
      store.failure || !options.treeScansInPool ? Promise.resolve(buildTrees(params, store.entries())) : (store.scan(treeBuildFolderReference, params) as Promise<TreeBuild>);
    const core = new NodeCore({
      nodeId: options.nodeId,
      actor: actor.actor,
      fallbackActors: options.fallbackActors,
      recordActor: (replacement) => actor.replace(replacement),
      store,
      transport: options.connect(),
      clock,
      signer: options.signer,
      lease,
      prng: options.prng,
      generation: options.generation,
      settings: options.settings,
      ...(options.gossipTable ? { gossipTable: options.gossipTable } : {}),
      hints: new HintStore(hintStore),
      scanTrees,
    });
    const life = new NodeLife({ core, store, hintStore, actor });
    if (options.cleanup) {
      const { ring, keysPerSecond, freshActor } = options.cleanup;
      try {
        await core.cleanup(ring, keysPerSecond, freshActor);
      } catch (error) {
        await life.close();
        throw error;
      }
    }
    return life;
  }

  /**
   * Ends the life: stops the core, closes the hint store and the store. The life ended cleanly,
   * and the next one keeps this life's actor, only if the store closed and never failed (a disk
   * fault may have lost versions the actor stamped); resolves with that verdict and never rejects.
   * The caller closes the transport. Idempotent.
   */
  close(): Promise<boolean> {
    this.#closing ??= (async () => {
      this.core.stop();
      await this.hintStore.close().catch(() => {});
      const closed = await this.store.close().then(() => true, () => false);
      if (!closed || this.store.failure) return false;
      try {
        this.#actor.markClean();
        return true;
      } catch {
        return false;
      }
    })();
    return this.#closing;
  }
}
