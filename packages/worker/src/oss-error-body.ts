/**
 * Reads an OSS XML error document (`<Error><Code>…</Code><Message>…</Message>…</Error>`), the body
 * OSS sends with a refused signed-URL download, and says whether it proves the link is gone for
 * good. Plain regular expressions, no XML library: we need two leaf elements from a capped, small
 * document, and bounded `[^<]` classes cannot backtrack badly whatever the body holds.
 */

export interface OssErrorBody {
  code: string | undefined;
  message: string | undefined;
  /**
   * True when the body itself says the object cannot be had any more: `NoSuchKey` (lifecycled
   * away), or "Request has expired." (OSS's word that the signed URL's `Expires` passed, whatever
   * our own clock says). Other refusals (a bad signature, a transient AccessDenied) prove nothing.
   */
  linkGone: boolean;
}

const CODE = /<Code>([^<]{0,256})<\/Code>/;
const MESSAGE = /<Message>([^<]{0,1024})<\/Message>/;
const EXPIRED_MESSAGE = /request has expired/i;

export function parseOssErrorBody(text: string): OssErrorBody {
  const code = leaf(CODE, text);
  const message = leaf(MESSAGE, text);
  const linkGone = code === 'NoSuchKey' || (message !== undefined && EXPIRED_MESSAGE.test(message));
  return { code, message, linkGone };
}

function leaf(pattern: RegExp, text: string): string | undefined {
  const match = pattern.exec(text);
  return match?.[1] === undefined ? undefined : decodeEntities(match[1].trim());
}

/** The five predefined XML entities and numeric references (OSS escapes `<>&'"` in messages). */
function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);/gi, (whole, name: string) => {
    const lower = name.toLowerCase();
    if (lower.startsWith('#x')) return fromCodePoint(Number.parseInt(lower.slice(2), 16), whole);
    if (lower.startsWith('#')) return fromCodePoint(Number(lower.slice(1)), whole);
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower] ?? whole;
  });
}

function fromCodePoint(codePoint: number, fallback: string): string {
  return codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : fallback;
}
