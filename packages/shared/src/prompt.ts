/**
 * Prompt rules. DashScope counts every character (Chinese character, letter, digit, symbol) as one
 * and silently truncates past 800. We count Unicode code points, which is what "character" means
 * for Chinese text and does not double-count emoji the way UTF-16 `.length` does, and we reject
 * longer prompts instead of letting the API cut them (reference §1.2, §5.4).
 */
export const MAX_PROMPT_CHARS = 800;

export function countPromptChars(prompt: string): number {
  let count = 0;
  for (const _ of prompt) count += 1;
  return count;
}
