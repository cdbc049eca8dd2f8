import { describe, expect, it } from 'vitest';
import { renderKeyTemplate, renderTemplate, templateFields } from './key-template.js';

describe('templateFields', () => {
  it('lists the placeholder names in order, repeats included', () => {
    expect(templateFields('catalogue/{sku}/{color}-{sku}.png')).toEqual(['sku', 'color', 'sku']);
  });

  it('accepts letters, digits, "_", "." and "-" in names and ignores other braces', () => {
    expect(templateFields('{a_b}{c.d}{e-f}{g h}{}{ij')).toEqual(['a_b', 'c.d', 'e-f']);
  });

  it('gives no fields for a template without placeholders', () => {
    expect(templateFields('images/fixed.png')).toEqual([]);
  });
});

describe('renderTemplate', () => {
  it('fills every placeholder, including repeats', () => {
    expect(renderTemplate('Studio photo of {title} in {color}, {title}', { title: 'a mug', color: 'red' })).toBe(
      'Studio photo of a mug in red, a mug',
    );
  });

  it('leaves text without placeholders unchanged', () => {
    expect(renderTemplate('plain prompt', {})).toBe('plain prompt');
  });

  it('allows "/" in values: only key templates restrict them', () => {
    expect(renderTemplate('a {x} b', { x: 'red/blue' })).toBe('a red/blue b');
  });

  it.each([
    ['missing', {}],
    ['undefined', { color: undefined }],
    ['empty', { color: '' }],
    ['blank', { color: '   ' }],
  ])('reports a %s value by its placeholder name', (_kind, values) => {
    const result = renderTemplate('{title} in {color}', { title: 'mug', ...values });
    expect(result).toEqual({ error: expect.stringContaining('{color}') });
    expect((result as { error: string }).error).toContain('"color"');
  });

  it('names the first placeholder that has no value', () => {
    expect(renderTemplate('{a}{b}', {})).toEqual({ error: expect.stringContaining('{a}') });
  });

  it('tells a column that is missing from one that is empty in the row', () => {
    expect(renderTemplate('{color}', {})).toEqual({ error: 'placeholder {color} has no value (no field or column "color")' });
    expect(renderTemplate('{color}', { color: ' ' })).toEqual({ error: 'placeholder {color} has no value (column "color" is empty in this row)' });
  });
});

describe('renderKeyTemplate', () => {
  it('fills a key template', () => {
    expect(renderKeyTemplate('catalogue/{sku}.png', { sku: 'SKU-1' })).toBe('catalogue/SKU-1.png');
  });

  it('accepts non-ASCII values and spaces', () => {
    expect(renderKeyTemplate('{brand}/{title}.png', { brand: 'acme', title: '红色 手机壳' })).toBe('acme/红色 手机壳.png');
  });

  it.each([
    ['a slash', 'a/b'],
    ['a climbing path', '../../etc'],
    ['a backslash', 'a\\b'],
    ['a newline', 'a\nb'],
    ['a NUL', 'a\u0000b'],
    ['a tab', 'a\tb'],
    ['DEL', 'a\u007fb'],
  ])('refuses a value containing %s, naming the placeholder', (_kind, value) => {
    const result = renderKeyTemplate('catalogue/{sku}.png', { sku: value });
    expect(typeof result).toBe('object');
    expect((result as { error: string }).error).toContain('{sku}');
  });

  it('still reports missing values', () => {
    expect(renderKeyTemplate('catalogue/{sku}.png', {})).toEqual({ error: expect.stringContaining('{sku}') });
  });

  it('ignores unsafe values of fields the template does not use', () => {
    expect(renderKeyTemplate('catalogue/{sku}.png', { sku: 'ok', title: 'a/b' })).toBe('catalogue/ok.png');
  });
});
