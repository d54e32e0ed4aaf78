import { z } from 'zod';

export interface CoordinatorOptions {
  /** How often workers are asked to heartbeat. */
  heartbeatIntervalMs: number;
  /** A worker silent this long is suspect (kept, reported in WatchCluster). */
  suspectAfterMs: number;
  /** A worker silent this long is dead: it leaves its run, whose group re-forms without it (a new generation). */
  deadAfterMs: number;
  /** How often membership is checked. */
  sweepIntervalMs: number;
  /** NATS url handed to workers in their assignments (the data plane). */
  natsUrl: string;
  /** Where runs whose config has no `checkpointStore` write their checkpoints (`--checkpoint-store`). */
  checkpointStore: 'local' | 'nats';
  /** Replicas of the object store bucket when created, for runs whose config has none; absent: min(3, NATS cluster size). */
  checkpointReplicas?: number;
}

export function defaultCoordinatorOptions(): CoordinatorOptions {
  return {
    heartbeatIntervalMs: 1000,
    suspectAfterMs: 3000,
    deadAfterMs: 6000,
    sweepIntervalMs: 250,
    natsUrl: 'nats://127.0.0.1:4222',
    checkpointStore: 'local',
  };
}

const schema = z
  .strictObject({
    heartbeatIntervalMs: z.int().min(10),
    suspectAfterMs: z.int().min(1),
    deadAfterMs: z.int().min(1),
    sweepIntervalMs: z.int().min(1),
    natsUrl: z.string().min(1),
    checkpointStore: z.enum(['local', 'nats']),
    checkpointReplicas: z.int().min(1).max(5).optional(),
  })
  .refine((o) => o.deadAfterMs >= o.suspectAfterMs, { message: 'deadAfterMs must be at least suspectAfterMs' });

/** Fills defaults and validates before any I/O. */
export function parseCoordinatorOptions(partial: Partial<CoordinatorOptions> = {}): CoordinatorOptions {
  const merged = { ...defaultCoordinatorOptions(), ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  const r = schema.safeParse(merged);
  if (!r.success)
    throw new Error(`coordinator options: ${r.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
  return r.data;
}
