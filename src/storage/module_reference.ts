/**
 * Code that a pool thread must run on a store's behalf (a merge rule, a scan folder) travels as a
 * reference: a module URL and an export name, which each thread imports once.
 */
export interface ModuleReference {
  readonly moduleUrl: string;
  readonly exportName: string;
}

const loaded = new Map<string, unknown>();

/**
 * Imports the module a reference names (once per thread) and returns its export, checked by
 * `accepts`; throws TypeError saying `expected` when the export is not one.
 */
export async function loadReference<T>(action: string, reference: ModuleReference, accepts: (value: unknown) => value is T, expected: string): Promise<T> {
  const cacheKey = `${reference.moduleUrl}#${reference.exportName}`;
  if (loaded.has(cacheKey)) return loaded.get(cacheKey) as T;
  const module = (await import(reference.moduleUrl)) as Record<string, unknown>;
  const value = module[reference.exportName];
  if (!accepts(value)) throw new TypeError(`${action} failed: ${cacheKey} does not export ${expected}`);
  loaded.set(cacheKey, value);
  return value;
}
