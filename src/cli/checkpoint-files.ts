/**
 * What `bnn rm` and `bnn gc` do to checkpoints: find a run's files (the rows' locations, and
 * whatever lies in its own directory of the local store or under `<run>/` in the object store),
 * delete rows then files, and say how many bytes that freed. A run that something still trains
 * (PENDING or RUNNING, its owner process alive or not checkable) is refused.
 */
import { existsSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CheckpointStores, isObjectLocation, LocalCheckpointStore, type StoredCheckpoint } from '../checkpoint/index.js';
import { NatsObjectBucket } from '../collective/nats-object-store.js';
import { natsAuthFromOptions, type NatsAuthFlags } from './security-options.js';
import type { NatsAuth } from '../collective/nats-url.js';
import { DEFAULT_KEEP_CHECKPOINTS, parseRunConfig } from '../config/index.js';
import { runLiveness } from '../query/liveness.js';
import type { Command } from 'commander';
import { fromEnv } from '../config/environment.js';
import { bytes } from '../query/format.js';
import type { StoreDb } from '../store/db.js';
import { checkpointsPastRetention, listCheckpoints, removeCheckpointRows, runOwner } from '../store/index.js';
import type { CheckpointRow, RunRow } from '../store/schema.js';
import { describeOwner } from '../util/process-owner.js';
import { UserError } from '../util/errors.js';

/** How to reach the object store: `--nats` and its credentials; absent: object-store checkpoints cannot be touched. */
export interface NatsTarget {
  url: string;
  auth: NatsAuth;
}

/** `--nats` with its credentials (flags, else BNN_NATS_*: `command` tells which), or null without `--nats`. */
export function natsTarget(flags: NatsAuthFlags, nats: string | undefined, command: Command): NatsTarget | null {
  if (nats === undefined) return null;
  return { url: nats, auth: natsAuthFromOptions(flags, (key) => fromEnv(command, key)) };
}

export const NEEDS_NATS_HINT = 'pass --nats <url> (with --nats-user/--nats-pass or --nats-token where the server wants them)';

/** The checkpoint stores of a CLI command: local files, and the object store at `--nats` when given. */
export function cliCheckpointStores(nats: NatsTarget | null): CheckpointStores {
  return new CheckpointStores({
    ...(nats
      ? {
          openBucket: (bucket: string) =>
            NatsObjectBucket.open({ ...nats.auth, servers: nats.url, bucket, name: 'bnn-cli', connectTimeoutMs: 5000 }),
        }
      : {}),
    noObjectsHint: NEEDS_NATS_HINT,
  });
}

/** Refuses a run that something may still be training: PENDING or RUNNING, its owner alive or not checkable. */
export function refuseIfLive(row: RunRow, what: string, force: boolean): void {
  if (row.status !== 'PENDING' && row.status !== 'RUNNING') return;
  const verdict = runLiveness(row);
  if (verdict?.state === 'gone') return; // ABANDONED
  if (force && verdict?.state !== 'alive') return;
  const owner = runOwner(row);
  const why =
    verdict?.state === 'alive'
      ? `the process that runs it (${owner ? describeOwner(owner) : 'its owner'}) is still running: stop it first`
      : `${verdict?.why ?? 'it was recorded without its owner process'}: cannot tell whether it still runs; pass --force if nothing runs it any more`;
  throw new UserError(`run ${row.id} is ${row.status}; ${what} refused: ${why}`);
}

/** A run's checkpoint files: its rows' locations, and what else lies in its directory (local) or under `<run>/` (object store, when reachable). */
export async function runCheckpointFiles(
  db: StoreDb,
  row: RunRow,
  stores: CheckpointStores,
): Promise<{ rows: CheckpointRow[]; files: StoredCheckpoint[] }> {
  const rows = listCheckpoints(db, row.id);
  requireNatsFor(
    row.id,
    rows.map((r) => r.path),
    stores,
  );
  const config = parseRunConfig(row.config, { source: `run ${row.id}` });
  const seen = new Map<string, number | null>();
  for (const r of rows) seen.set(r.path, null);
  for (const f of await new LocalCheckpointStore(config.checkpointDir).list(row.id)) seen.set(f.location, f.bytes);
  if (stores.hasObjects && (config.checkpointStore === 'nats' || rows.some((r) => isObjectLocation(r.path)))) {
    for (const f of await (await stores.objects()).list(row.id)) seen.set(f.location, f.bytes);
  }
  const files: StoredCheckpoint[] = [];
  for (const [location, size] of seen) {
    const bytes = size ?? (await stores.size(location));
    if (bytes !== null) files.push({ location, bytes });
  }
  return { rows, files };
}

/** Object-store locations among `locations` when the object store cannot be reached: a clear error first, nothing deleted. */
export function requireNatsFor(runId: string, locations: readonly string[], stores: CheckpointStores): void {
  const remote = locations.filter(isObjectLocation);
  if (remote.length === 0 || stores.hasObjects) return;
  throw new UserError(
    `run ${runId} has ${remote.length} checkpoint(s) in the NATS object store (${remote[0]}${remote.length > 1 ? ', …' : ''}): ${NEEDS_NATS_HINT}`,
    { exitCode: 2 },
  );
}

/** Deletes files, summing the bytes freed; failures are collected, not thrown. */
export async function deleteFiles(
  stores: CheckpointStores,
  locations: readonly string[],
): Promise<{ bytesFreed: number; deleted: number; failed: { location: string; problem: string }[] }> {
  let bytesFreed = 0;
  let deleted = 0;
  const failed: { location: string; problem: string }[] = [];
  for (const location of locations) {
    try {
      const n = await stores.delete(location);
      bytesFreed += n;
      if (n > 0) deleted++;
      if (!isObjectLocation(location)) removeEmptyDir(dirname(location));
    } catch (err) {
      failed.push({ location, problem: (err as Error).message });
    }
  }
  return { bytesFreed, deleted, failed };
}

function removeEmptyDir(dir: string): void {
  try {
    if (existsSync(dir)) rmdirSync(dir);
  } catch {
    /* not empty, or not ours to remove */
  }
}

/** Retention of one finished run: the rows past `train.keepCheckpoints` (+ best) and their files. */
export function retentionOf(db: StoreDb, row: RunRow): { keep: number; rows: CheckpointRow[] } {
  const config = parseRunConfig(row.config, { source: `run ${row.id}` });
  const keep = config.train.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS;
  return { keep, rows: checkpointsPastRetention(db, row.id, keep) };
}

/** Rows removed and the files no remaining row names (see removeCheckpointRows). */
export function removeRows(db: StoreDb, rows: readonly CheckpointRow[]): string[] {
  return removeCheckpointRows(db, rows);
}

/** `12.3 MiB` */
export const formatBytes = (n: number): string => bytes(n);
