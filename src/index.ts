/** loomkv's public API. */
export { createCluster, Cluster, type CreateClusterOptions, type GetResult, type RequestOptions, type RingChangeReport, type WriteOptions } from "./runtime/cluster.ts";
export { clusterConfigDefaults, type ClusterConfig } from "./cluster/cluster_config.ts";
export { openStore, type OpenStoreOptions } from "./runtime/open_store.ts";
export { Store, type StoreEntry, type StoreStats, type WriteOperation } from "./storage/store.ts";
export { storeConfigDefaults, type StoreConfig, type FsyncPolicy } from "./storage/store_config.ts";
export type { Version } from "./storage/version_set_format.ts";
export type { MergeRule, MergeRuleReference } from "./storage/merge_rule.ts";
export { QuorumError } from "./coordinator/quorum_error.ts";
export { TooManySiblingsError } from "./coordinator/replica_apply.ts";
export { BusyError, ClosedError, CorruptionError, IoError, LockedError, LoomRangeError, LoomTypeError, RingChangeError, type ErrorCode } from "./util/errors.ts";
export { limits } from "./util/limits.ts";
