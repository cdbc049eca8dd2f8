import { describe, expect, it } from 'vitest';
import { jsonArrayItems, MAX_ITEM_DEPTH } from './json-array-items.js';

async function items(body: string | string[], maxItemBytes = 1024): Promise<unknown[]> {
  const chunks = (Array.isArray(body) ? body : [body]).map((c) => Buffer.from(c));
  const out: unknown[] = [];
  for await (const item of jsonArrayItems(chunks, { maxItemBytes })) out.push(item);
  return out;
}

/** Every way to cut `text` in two or three pieces: an item must not depend on where chunks end. */
function splits(text: string): string[][] {
  const out: string[][] = [[text]];
  for (let i = 1; i < text.length; i += 1) {
    out.push([text.slice(0, i), text.slice(i)]);
    for (let j = i + 1; j < text.length; j += 3) out.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
  }
  return out;
}

describe('jsonArrayItems', () => {
  const tricky = ' [ {"prompt":"a, [cat] \\"quoted\\" {x}","metadata":{"k":"v"}} , "s]\\\\" ,[1,[2]], 3 ,null,true , {"é":"猫"} ]\n';
  const expected = JSON.parse(tricky) as unknown[];

  it('yields the items JSON.parse would find, wherever the chunks are cut', async () => {
    for (const chunks of splits(tricky)) expect(await items(chunks)).toEqual(expected);
  });

  it('skips a UTF-8 byte order mark before the array', async () => {
    expect(await items('\uFEFF[{"prompt":"a"}]')).toEqual([{ prompt: 'a' }]);
  });

  it(`refuses an item nested more than ${MAX_ITEM_DEPTH} levels deep (it would overflow a later walk of it)`, async () => {
    const deep = `[${'['.repeat(5_000)}${']'.repeat(5_000)}]`;
    await expect(items(deep, 64 * 1024)).rejects.toMatchObject({ code: 'REQUEST_INVALID', message: `body: item 0 is nested more than ${MAX_ITEM_DEPTH} levels deep` });
    expect(await items(`[${'['.repeat(MAX_ITEM_DEPTH)}${']'.repeat(MAX_ITEM_DEPTH)}]`)).toHaveLength(1);
  });

  it('yields nothing for an empty array', async () => {
    expect(await items(' [ ] ')).toEqual([]);
  });

  it.each([
    ['{"prompt":"a"}', 'body: must be a JSON array of job requests'],
    ['', 'body: must be a JSON array of job requests'],
    ['[{"a":1},]', 'body: item 1 is missing after a comma'],
    ['[,{"a":1}]', 'body: item 0 is missing before a comma'],
    ['[{"a":1},,{"a":2}]', 'body: item 1 is missing before a comma'],
    ['[{"a":1} {"a":2}]', 'body: item 0 is not valid JSON'],
    ["[{'a':1}]", 'body: item 0 is not valid JSON'],
    ['[{"a":1}, {"b":]', 'body: ends inside item 1 (the array is not closed)'],
    ['[{"a":1}, {"b":]]', 'body: item 1 is not valid JSON'],
    ['[{"a":1}', 'body: ends inside item 0 (the array is not closed)'],
    ['[{"a":1}] [2]', 'body: must be one JSON array (text follows its closing bracket)'],
    ['[1,2', 'body: ends inside item 1 (the array is not closed)'],
  ])('refuses %j: %s', async (body, message) => {
    await expect(items(body)).rejects.toMatchObject({ code: 'REQUEST_INVALID', message });
  });

  it('refuses an item over the cap before buffering it whole, naming the item', async () => {
    const big = `[{"a":1},{"prompt":"${'x'.repeat(5000)}"}]`;
    const chunks = big.match(/.{1,100}/g) as string[];
    await expect(items(chunks, 1024)).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'body: item 1 is over 1024 bytes' });
  });

  it('yields the items before a later error (the caller stops and refuses the whole upload)', async () => {
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const item of jsonArrayItems([Buffer.from('[1,2,'), Buffer.from('}')], { maxItemBytes: 100 })) seen.push(item);
      })(),
    ).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    expect(seen).toEqual([1, 2]);
  });
});
