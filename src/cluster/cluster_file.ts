/**
 * `dataDir/cluster.json` (docs/formats/cluster_file.md): the cluster's configuration, its members
 * and the next node id. Encoding, decoding with every check a damaged or foreign file fails, and
 * how the settings given to `createCluster()` combine with a stored cluster, and its durable
 * replacement through the FileSystem interface (the real disk or the simulated one).
 */
import { joinPath, replaceFileDurably, type FileSystem } from "../io/file_system.ts";
import { CorruptionError, LoomRangeError, describe } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { applyConfigChange, clusterConfigDefaults, resolveClusterConfig, type ClusterConfig } from "./cluster_config.ts";

export const CLUSTER_FILE_NAME = "cluster.json";
export const CLUSTER_FILE_TEMPORARY_NAME = `${CLUSTER_FILE_NAME}.tmp`;

/**
 * Durably replaces `directory`/cluster.json with `stored`: a crash leaves the old file or the new
 * one, whole (replaceFileDurably).
 */
export function writeClusterFile(fs: FileSystem, directory: string, stored: StoredCluster): void {
  replaceFileDurably(fs, joinPath(directory, CLUSTER_FILE_NAME), joinPath(directory, CLUSTER_FILE_TEMPORARY_NAME), encodeClusterFile(stored));
}

/** The cluster stored in `directory`, or undefined when it has no cluster.json. CorruptionError when damaged. */
export function readClusterFile(fs: FileSystem, directory: string): StoredCluster | undefined {
  const path = joinPath(directory, CLUSTER_FILE_NAME);
  return fs.exists(path) ? decodeClusterFile(fs.readFile(path), path) : undefined;
}

/** Written now. Format 1 had no members (they were 0..nodes-1) and no nextNodeId. */
export const CLUSTER_FILE_FORMAT = 2;

export interface StoredCluster {
  readonly config: ClusterConfig;
  /** The ring's nodes, ascending; as many as `config.nodes`. */
  readonly members: readonly number[];
  /** Ids are never reused: the next node added gets this one. */
  readonly nextNodeId: number;
  /**
   * The next fresh actor a node may stamp with (node_actor.ts): handed out once, never reused.
   * Files written before actors existed start at firstFreshActor.
   */
  readonly nextActor: number;
  /**
   * Members that have not yet dropped the keys they no longer replicate after the last ring
   * change (their cleanup failed, or they were down): each finishes it before it serves again.
   * Files written before cleanups were remembered have none.
   */
  readonly pendingCleanups: readonly number[];
}

/** Fresh actors come after every node id, so they never meet an actor a node id once was. */
export const firstFreshActor = limits.nodeIdMax + 1;

export function encodeClusterFile(stored: StoredCluster): Uint8Array {
  const body = { format: CLUSTER_FILE_FORMAT, config: stored.config, members: stored.members, nextNodeId: stored.nextNodeId, nextActor: stored.nextActor, pendingCleanups: stored.pendingCleanups };
  return new TextEncoder().encode(`${JSON.stringify(body, null, 2)}\n`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The detail of a validation error, without its "<action> failed: " prefix. */
function detailOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^.*? failed: /, "");
}

/**
 * The cluster `bytes` describe. Throws CorruptionError naming `path` when they are not a complete
 * cluster file (cut short, not JSON, `null`, a wrong shape, an invalid configuration, members that
 * do not match it): a damaged file is reported, never replaced with defaults. Settings added since
 * the file was written take their defaults.
 */
export function decodeClusterFile(bytes: Uint8Array, path: string): StoredCluster {
  const fail = (detail: string): never => {
    throw new CorruptionError(`${detail}; the file was left as it is`, path, 0);
  };
  if (bytes.length > limits.clusterFileBytesMax) fail(`file is ${bytes.length} bytes, limit is ${limits.clusterFileBytesMax}`);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    fail(`not a complete JSON document (${detailOf(error)})`);
  }
  if (!isRecord(body)) return fail(`expected a JSON object, got ${describe(body)}`);
  const { format, config: storedConfig, members: storedMembers, nextNodeId: storedNext, nextActor: storedActor, pendingCleanups: storedCleanups, ...unknown } = body;
  if (format !== 1 && format !== CLUSTER_FILE_FORMAT) fail(`format must be 1 or ${CLUSTER_FILE_FORMAT}, got ${describe(format)}`);
  const extra = Object.keys(unknown);
  if (extra.length > 0) fail(`unknown field ${extra[0]}`);
  let config: ClusterConfig;
  try {
    config = applyConfigChange("read cluster file", clusterConfigDefaults, storedConfig);
  } catch (error) {
    return fail(`config: ${detailOf(error)}`);
  }
  const members = format === 1 && storedMembers === undefined ? Array.from({ length: config.nodes }, (_, node) => node) : storedMembers;
  if (!Array.isArray(members) || members.length !== config.nodes) {
    return fail(`members must be an array of ${config.nodes} node ids, got ${describe(members)}`);
  }
  members.forEach((node: unknown, index) => {
    if (typeof node !== "number" || !Number.isInteger(node) || node < 0 || node > limits.nodeIdMax) {
      fail(`members[${index}] must be a node id in 0..${limits.nodeIdMax}, got ${describe(node)}`);
    }
    if (index > 0 && (node as number) <= (members[index - 1] as number)) fail("members must be ascending and distinct");
  });
  const highest = Math.max(...(members as number[]));
  const nextNodeId = format === 1 && storedNext === undefined ? highest + 1 : storedNext;
  if (typeof nextNodeId !== "number" || !Number.isInteger(nextNodeId) || nextNodeId <= highest || nextNodeId > limits.nodeIdMax + 1) {
    fail(`nextNodeId must be an integer above every member (${highest}) and at most ${limits.nodeIdMax + 1}, got ${describe(nextNodeId)}`);
  }
  const nextActor = storedActor ?? firstFreshActor;
  if (typeof nextActor !== "number" || !Number.isInteger(nextActor) || nextActor < firstFreshActor || nextActor > limits.actorMax) {
    fail(`nextActor must be an integer in ${firstFreshActor}..${limits.actorMax}, got ${describe(nextActor)}`);
  }
  const pendingCleanups = storedCleanups ?? [];
  if (!Array.isArray(pendingCleanups) || pendingCleanups.some((node: unknown) => typeof node !== "number" || !(members as number[]).includes(node))) {
    fail(`pendingCleanups must be an array of members, got ${describe(pendingCleanups)}`);
  }
  return { config, members: members as number[], nextNodeId: nextNodeId as number, nextActor: nextActor as number, pendingCleanups: pendingCleanups as number[] };
}

/**
 * The cluster to open: `stored` (or, for a new directory, the defaults) with `settings` applied.
 * Throws LoomTypeError/LoomRangeError for invalid settings, and LoomRangeError when they ask for
 * another node count, N or vnodes per node than the stored cluster has (those change live, with
 * `addNode()`/`removeNode()` and `configure()`).
 */
export function resolveStoredCluster(dataDir: string, stored: StoredCluster | undefined, settings: unknown): StoredCluster {
  if (stored === undefined) {
    const config = resolveClusterConfig(settings);
    const members = Array.from({ length: config.nodes }, (_, node) => node);
    return { config, members, nextNodeId: config.nodes, nextActor: firstFreshActor, pendingCleanups: [] };
  }
  const config = applyConfigChange("create cluster", stored.config, settings);
  if (config.nodes !== stored.config.nodes) {
    throw new LoomRangeError(`create cluster failed: ${dataDir} holds a ${stored.config.nodes}-node cluster, asked for ${config.nodes} nodes`);
  }
  if (config.n !== stored.config.n || config.vnodesPerNode !== stored.config.vnodesPerNode) {
    throw new LoomRangeError(
      `create cluster failed: ${dataDir} holds a cluster with n = ${stored.config.n} and vnodesPerNode = ${stored.config.vnodesPerNode}; open it as it is, then configure()`,
    );
  }
  return { config, members: stored.members, nextNodeId: stored.nextNodeId, nextActor: stored.nextActor, pendingCleanups: stored.pendingCleanups };
}
