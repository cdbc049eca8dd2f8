/**
 * Wire schemas of DashScope answers, read by key and tolerant of anything unknown: the only real
 * capture we have (qwen-image-max, reference/captures) has no `text`, no `reasoning_content` and no
 * token usage, so every field but the image URL is optional.
 */
import { z } from 'zod';

const contentItem = z.looseObject({ image: z.string().optional(), text: z.string().optional() });

export const generationSuccessSchema = z.looseObject({
  output: z.looseObject({
    choices: z
      .array(
        z.looseObject({
          finish_reason: z.string().optional(),
          message: z.looseObject({
            role: z.string().optional(),
            content: z.array(z.unknown()),
            reasoning_content: z.string().nullish(),
          }),
        }),
      )
      .min(1),
  }),
  usage: z
    .looseObject({
      width: z.number().optional(),
      height: z.number().optional(),
      image_count: z.number().optional(),
    })
    .optional(),
  request_id: z.string().optional(),
});

export const errorBodySchema = z.looseObject({
  code: z.union([z.string(), z.number()]).optional(),
  message: z.string().optional(),
  msg: z.string().optional(),
  request_id: z.string().optional(),
});

export interface GenerationOutput {
  imageUrl: string;
  /** The prompt the model used: the rewritten one with prompt_extend, else the prompt we sent. */
  usedPrompt: string;
  reasoning: string | undefined;
  width: number | undefined;
  height: number | undefined;
  requestId: string | undefined;
}

/** Finds the image and text by key, not by position (their order differs between sources). */
export function readGenerationOutput(body: unknown, sentPrompt: string, headerRequestId: string | undefined): GenerationOutput | string {
  const parsed = generationSuccessSchema.safeParse(body);
  if (!parsed.success) return `unexpected success body: ${parsed.error.issues[0]?.message ?? 'invalid'} at ${parsed.error.issues[0]?.path.join('.') ?? ''}`;
  const message = parsed.data.output.choices[0]?.message;
  let imageUrl: string | undefined;
  let text: string | undefined;
  for (const raw of message?.content ?? []) {
    const item = contentItem.safeParse(raw);
    if (!item.success) continue;
    imageUrl ??= item.data.image;
    text ??= item.data.text;
  }
  if (!imageUrl) return 'success body has no image URL in output.choices[0].message.content';
  return {
    imageUrl,
    usedPrompt: text && text.length > 0 ? text : sentPrompt,
    reasoning: message?.reasoning_content || undefined,
    width: parsed.data.usage?.width,
    height: parsed.data.usage?.height,
    requestId: parsed.data.request_id ?? headerRequestId,
  };
}
