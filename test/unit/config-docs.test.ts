import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { z } from 'zod';
import { ConfigSchema } from '../../server/config/schema.js';
import { REPO } from '../helpers/cli.js';

/** Strips optional/default/prefault/nullable wrappers down to the schema inside. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur: z.ZodType = s;
  for (;;) {
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable || cur instanceof z.ZodDefault || cur instanceof z.ZodPrefault) {
      cur = cur.unwrap() as z.ZodType;
    } else return cur;
  }
}

/** Every leaf key of an object schema, dotted (`kickstart.maxInFlight`). Records count as leaves. */
function keysOf(s: z.ZodType, prefix = ''): string[] {
  const inner = unwrap(s);
  if (!(inner instanceof z.ZodObject)) return [prefix];
  return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([k, v]) => keysOf(v, prefix ? `${prefix}.${k}` : k));
}

describe('docs/configuration.md', () => {
  it('documents every key of the config schema (the schema is strict: an undocumented key is a trap)', () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/configuration.md'), 'utf8');
    const keys = keysOf(ConfigSchema);
    expect(keys.length).to.be.greaterThan(20);
    const missing = keys.filter((k) => !doc.includes(`\`${k}\``));
    expect(missing, `keys missing from docs/configuration.md`).to.deep.equal([]);
  });
});
