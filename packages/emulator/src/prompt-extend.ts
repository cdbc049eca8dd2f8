import { createHash } from 'node:crypto';

/** What the emulated `prompt_extend` rewriter returns. */
export interface ExtendedPrompt {
  readonly text: string;
  readonly reasoning: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly reasoningTokens: number;
}

const EN_PHRASES = [
  'photorealistic rendering with rich, natural detail',
  'soft diffused lighting with gentle shadows',
  'balanced composition with a clear focal point',
  'shallow depth of field and a softly blurred background',
  'high resolution, sharp focus, fine textures',
  'harmonious colour palette with subtle contrast',
  'cinematic atmosphere, eye-level perspective',
  'clean background that keeps attention on the subject',
];

const ZH_PHRASES = [
  '画面写实，细节丰富自然',
  '柔和的漫射光，阴影过渡细腻',
  '构图均衡，主体突出',
  '浅景深，背景柔和虚化',
  '高清画质，对焦清晰，纹理细腻',
  '色彩和谐，对比适中',
  '电影感氛围，平视视角',
  '背景简洁，视线集中在主体上',
];

// Upstream wraps the user's prompt in a long rewriting instruction; this stands in for its size.
const SYSTEM_PROMPT_TOKENS = 180;

/**
 * A deterministic stand-in for the LLM rewrite behind `prompt_extend=true`: the prompt plus four
 * descriptive phrases picked by the prompt's hash (Chinese phrases for prompts containing Chinese),
 * a short reasoning paragraph, and token counts estimated from their lengths.
 */
export function extendPrompt(prompt: string): ExtendedPrompt {
  const chinese = /[\u3400-\u9fff]/.test(prompt);
  const phrases = pickPhrases(prompt, chinese ? ZH_PHRASES : EN_PHRASES, 4);
  const base = prompt.trim().replace(/[.。!！,，;；]+$/u, '');
  const subject = Array.from(base).slice(0, 60).join('');
  const text = chinese ? `${base}，${phrases.join('，')}。` : `${base}, ${phrases.join(', ')}.`;
  const reasoning = chinese
    ? `用户想要的画面是“${subject}”。我会保留原有主体和意图，补充光线、构图、景深和画质方面的描述，使画面更完整、更具表现力。`
    : `The user wants an image of "${subject}". I will keep the subject and intent unchanged and ` +
      'add details about lighting, composition, depth of field and image quality so the result ' +
      'is vivid and coherent.';
  const reasoningTokens = estimateTokens(reasoning);
  const outputTokens = estimateTokens(text) + reasoningTokens;
  return {
    text,
    reasoning,
    inputTokens: SYSTEM_PROMPT_TOKENS + estimateTokens(prompt),
    outputTokens,
    reasoningTokens,
  };
}

function pickPhrases(prompt: string, pool: readonly string[], count: number): string[] {
  const digest = createHash('sha256').update(prompt, 'utf8').digest();
  const remaining = [...pool];
  const picked: string[] = [];
  for (let i = 0; i < count && remaining.length > 0; i++) {
    const [phrase] = remaining.splice((digest[i] ?? 0) % remaining.length, 1);
    if (phrase !== undefined) picked.push(phrase);
  }
  return picked;
}

/** Rough tokenizer: one token per CJK character, one per four other characters. */
export function estimateTokens(text: string): number {
  let cjk = 0;
  let other = 0;
  for (const ch of text) {
    if (/[\u3000-\u9fff\uff00-\uffef]/.test(ch)) cjk++;
    else other++;
  }
  return cjk + Math.ceil(other / 4);
}
