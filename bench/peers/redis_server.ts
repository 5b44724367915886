/**
 * A throwaway redis-server for the benchmark: found on PATH, started on a free loopback port with
 * its own temporary directory and no persistence (`--save "" --appendonly no`), stopped and
 * removed at the end. When redis-server is not installed, `findRedisServer` says so and the
 * bench runs without Redis.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_HOST = "127.0.0.1";
/** How long a starting server may take to accept connections. */
const START_TIMEOUT_MS = 10_000;

export interface RedisServer {
  readonly port: number;
  /** "7.0.15" */
  readonly version: string;
  /** The server's command line flags, for the report. */
  readonly flags: readonly string[];
  stop(): Promise<void>;
}

/** Servers started and not yet stopped; `killLiveRedisServers` ends them after a signal. */
const live = new Set<{ child: ChildProcess; directory: string }>();

export function killLiveRedisServers(): void {
  for (const server of live) {
    server.child.kill("SIGKILL");
    rmSync(server.directory, { recursive: true, force: true });
  }
  live.clear();
}

/** The redis-server version on PATH, or undefined with the reason it cannot run. */
export function findRedisServer(): { version: string } | { missing: string } {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8", timeout: 5000 });
  if (probe.error) {
    const code = (probe.error as NodeJS.ErrnoException).code;
    return { missing: code === "ENOENT" ? "redis-server is not installed (not on PATH); install it with `apt-get install redis-server`" : `redis-server --version failed: ${probe.error.message}` };
  }
  if (probe.status !== 0) return { missing: `redis-server --version exited with status ${probe.status}` };
  return { version: /v=(\S+)/.exec(probe.stdout)?.[1] ?? "unknown" };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, REDIS_HOST, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("bench failed: no free loopback port"))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: REDIS_HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Starts redis-server; resolves once it accepts connections. REQUIRES: findRedisServer() found it. */
export async function startRedisServer(version: string): Promise<RedisServer> {
  const port = await freePort();
  const directory = mkdtempSync(join(tmpdir(), "loomkv-bench-redis-"));
  const flags = ["--port", String(port), "--bind", REDIS_HOST, "--save", "", "--appendonly", "no", "--dir", directory, "--loglevel", "warning"];
  const child = spawn("redis-server", flags, { stdio: ["ignore", "ignore", "pipe"] });
  const entry = { child, directory };
  live.add(entry);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (!exited) child.kill("SIGTERM");
    await exit;
    live.delete(entry);
    rmSync(directory, { recursive: true, force: true });
  };
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (!(await canConnect(port))) {
    if (exited || performance.now() > deadline) {
      await stop();
      throw new Error(`bench failed: redis-server did not accept connections on ${REDIS_HOST}:${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { port, version, flags: flags.map((flag) => (flag === "" ? "''" : flag === directory ? "<temp dir>" : flag)), stop };
}
