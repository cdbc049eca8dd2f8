/** Writes packages/client/src/schema.ts from the API's OpenAPI document: `pnpm client:generate`. */
import { writeFileSync } from 'node:fs';
import { clientSchemaSource } from './client-schema-source.ts';

writeFileSync(new URL('../packages/client/src/schema.ts', import.meta.url), await clientSchemaSource());
console.log('wrote packages/client/src/schema.ts');
