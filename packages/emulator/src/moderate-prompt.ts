import type { ModerationCode } from './emulator-options.js';
import type { DashScopeError } from './error-body.js';

const MESSAGES: Readonly<Record<ModerationCode, string>> = {
  DataInspectionFailed: 'Input data may contain inappropriate content.',
  IPInfringementSuspect: 'Input data is suspected of being involved in IP infringement.',
};

/** The emulated prompt moderation: a case-insensitive trigger-word match rejects with 400. */
export function moderatePrompt(
  prompt: string,
  triggerWords: Readonly<Record<ModerationCode, readonly string[]>>,
): DashScopeError | undefined {
  const haystack = prompt.toLowerCase();
  for (const code of Object.keys(MESSAGES) as ModerationCode[]) {
    if (triggerWords[code].some((word) => haystack.includes(word.toLowerCase()))) {
      return { status: 400, code, message: MESSAGES[code] };
    }
  }
  return undefined;
}
