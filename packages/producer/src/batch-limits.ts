/** Most items one batch may have (API bodies, schedule ticks). */
export const MAX_BATCH_ITEMS = 100_000;
