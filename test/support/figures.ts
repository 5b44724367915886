/**
 * Figures a test measured, for the test report: each call writes one JSON file under
 * `.tmp/test-figures/` (below the directory the tests run from) named by runtime and figure name;
 * `npm test -- --report` renders them into docs/test-report.md. A test asserts on its figures
 * itself; recording them changes nothing.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const runtime = "Deno" in globalThis ? "deno" : "node";

export function recordFigures(name: string, figures: Record<string, unknown>): void {
  const directory = join(process.cwd(), ".tmp", "test-figures");
  mkdirSync(directory, { recursive: true });
  writeFileSync(join(directory, `${runtime}-${name}.json`), `${JSON.stringify({ runtime, name, ...figures }, null, 2)}\n`);
}
