/**
 * A binary min-heap ordered by a caller's `before(a, b)` (true when a must come out first).
 * Used by the virtual clock (timers), the simulated network (deliveries) and the k-way record
 * merge. Not thread-shared.
 */
export class MinHeap<T> {
  readonly #before: (a: T, b: T) => boolean;
  #items: T[] = [];

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#items.length;
  }

  /** The first item, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    let index = items.length;
    items.push(item);
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const above = items[parent]!;
      if (!this.#before(item, above)) break;
      items[index] = above;
      index = parent;
    }
    items[index] = item;
  }

  /** Removes and returns the first item. */
  pop(): T | undefined {
    const items = this.#items;
    const first = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.fixFirst();
    }
    return first;
  }

  /** Restores order after the first item's key changed in place (it may only have grown later). */
  fixFirst(): void {
    const items = this.#items;
    const moving = items[0];
    if (moving === undefined) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && this.#before(items[right]!, items[left]!) ? right : left;
      const below = items[child]!;
      if (!this.#before(below, moving)) break;
      items[index] = below;
      index = child;
    }
    items[index] = moving;
  }

  /** Keeps only the items `keep` accepts (order is rebuilt). Returns how many were removed. */
  retain(keep: (item: T) => boolean): number {
    const kept = this.#items.filter(keep);
    const removed = this.#items.length - kept.length;
    this.#items = [];
    for (const item of kept) this.push(item);
    return removed;
  }

  items(): readonly T[] {
    return this.#items;
  }
}
