// Mantine reads these browser APIs, which happy-dom lacks.
const g = globalThis as unknown as Record<string, unknown>;
if (!g.matchMedia) {
  g.matchMedia = (query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => {},
    removeListener: () => {},
    addEventListener: () => {},
    removeEventListener: () => {},
    dispatchEvent: () => false,
  });
}
if (!g.ResizeObserver) {
  g.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}

// happy-dom does no layout: every element measures 0×0, so a virtualized list would show no
// rows. Give elements the size of a typical window so the virtualizer has a viewport.
for (const [prop, value] of [
  ["clientWidth", 1000],
  ["clientHeight", 600],
  ["offsetWidth", 1000],
  ["offsetHeight", 600],
] as const) {
  Object.defineProperty(HTMLElement.prototype, prop, { configurable: true, get: () => value });
}
