import type { Region } from './emulator-options.js';

/**
 * List price per generated image in micro-dollars (reference §4.2, promotions excluded). Integers
 * keep the running total exact.
 */
export const PRICE_MICRO_USD: Readonly<Record<Region, { standard: number; promptExtend: number }>> = {
  singapore: { standard: 15_000, promptExtend: 30_000 },
  beijing: { standard: 14_340, promptExtend: 28_680 },
};

export function imagePriceMicroUsd(region: Region, promptExtend: boolean): number {
  const price = PRICE_MICRO_USD[region];
  return promptExtend ? price.promptExtend : price.standard;
}
