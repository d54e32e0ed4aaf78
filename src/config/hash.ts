import { createHash } from 'node:crypto';
import { COMPRESSIONS } from '../collective/compression.js';
import type { RunConfig } from './schema.js';

/**
 * JSON with object keys sorted at every level, so equal configs give equal text
 * whatever order their keys were written or merged in. `undefined` fields are dropped
 * (as JSON.stringify does); numbers use JSON's shortest round-trip form.
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`cannot serialise ${typeof value}`);
    return text;
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : stableStringify(v))).join(',')}]`;
  }
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/** sha256 (hex) of the config's stable JSON: the identity of an experiment setting. */
export function configHash(config: RunConfig): string {
  return createHash('sha256').update(stableStringify(config)).digest('hex');
}

/**
 * Whether a checkpoint written under config hash `hash` belongs to the experiment `config`
 * describes: the same config but for `train.compression`, the all-reduce's wire format, which a
 * resume may change (`bnn resume --compression`) without changing what a checkpoint holds.
 */
export function sameExperiment(hash: string, config: RunConfig): boolean {
  return COMPRESSIONS.some((compression) => configHash({ ...config, train: { ...config.train, compression } }) === hash);
}
