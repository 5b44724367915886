/**
 * Locates a thread entry point in workers/: the `.ts` file when running sources (Deno), the
 * compiled `.js` next to this module's build otherwise (Node runs dist/).
 */
export function workerFileUrl(name: string): URL {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`../../workers/${name}${extension}`, import.meta.url);
}
