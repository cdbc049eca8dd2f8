import type { ExtendedPrompt } from './prompt-extend.js';

/**
 * The HTTP 200 body of reference §2: one choice holding the image URL and the (possibly
 * rewritten) prompt, `reasoning_content` on the message, and token usage that is all zeros
 * unless `prompt_extend` was on (only then is `output_tokens_details` present).
 */
export function buildSuccessBody(args: {
  readonly requestId: string;
  readonly imageUrl: string;
  readonly prompt: string;
  readonly width: number;
  readonly height: number;
  readonly extended: ExtendedPrompt | undefined;
}): object {
  const { extended } = args;
  const usage = extended
    ? {
        width: args.width,
        height: args.height,
        image_count: 1,
        input_tokens: extended.inputTokens,
        output_tokens: extended.outputTokens,
        output_tokens_details: { reasoning_tokens: extended.reasoningTokens },
        total_tokens: extended.inputTokens + extended.outputTokens,
      }
    : { width: args.width, height: args.height, image_count: 1, input_tokens: 0, output_tokens: 0, total_tokens: 0 };
  return {
    output: {
      choices: [
        {
          finish_reason: 'stop',
          message: {
            role: 'assistant',
            content: [{ image: args.imageUrl }, { text: extended ? extended.text : args.prompt }],
            reasoning_content: extended ? extended.reasoning : '',
          },
        },
      ],
    },
    usage,
    request_id: args.requestId,
  };
}
