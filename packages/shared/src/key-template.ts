/**
 * Object key templates such as `catalogue/{sku}.png`.
 *
 * Placeholders are filled from the job's metadata (a CSV row's columns end up there) and a few
 * built-ins: `{id}` (job id), `{batchId}`, `{date}` (UTC, YYYY-MM-DD, at enqueue). A substituted
 * value may not contain `/`, `\` or control characters: a product title must not be able to create
 * folders or climb out of the prefix. The final key is checked by `assertSafeObjectKey` as well.
 */
const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g;
const UNSAFE_VALUE = /[/\\\u0000-\u001f\u007f]/;

export function templateFields(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
}

/** Fills a template. Returns the text, or a sentence naming the field that could not be filled. */
export function renderTemplate(template: string, values: Readonly<Record<string, string | undefined>>): string | { error: string } {
  let problem: string | undefined;
  const text = template.replace(PLACEHOLDER, (_whole, name: string) => {
    const value = values[name];
    if (value === undefined) {
      problem ??= `placeholder {${name}} has no value (no field or column "${name}")`;
      return '';
    }
    if (value.trim() === '') {
      // The column exists: saying it does not would send the user looking for a typo.
      problem ??= `placeholder {${name}} has no value (column "${name}" is empty in this row)`;
      return '';
    }
    return value;
  });
  if (problem) return { error: problem };
  // A placeholder the pattern could not read (`{Product Title}`) must not reach a paid prompt.
  const leftover = /\{[^{}]*\}/.exec(text);
  if (leftover) return { error: `${leftover[0]} is not a usable placeholder: names may use only letters, digits, _ . -` };
  return text;
}

/** Like `renderTemplate`, but also refuses values that would change the key's folder structure. */
export function renderKeyTemplate(template: string, values: Readonly<Record<string, string | undefined>>): string | { error: string } {
  for (const name of templateFields(template)) {
    const value = values[name];
    if (value !== undefined && UNSAFE_VALUE.test(value)) {
      return { error: `placeholder {${name}} value "${value}" contains "/", "\\" or a control character` };
    }
  }
  return renderTemplate(template, values);
}
