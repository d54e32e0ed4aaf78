/**
 * The all-reduce's wire formats, listed once: the run config (`train.compression`), the CLI
 * flags, the coordinator and the codec all take their values from here. Byte layouts: codec.ts.
 * The position in this list is the format's id on the wire (message header, ready barrier).
 */
export const COMPRESSIONS = ['none', 'fp16', 'sign-ef'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** Whether `value` names a wire format. */
export function isCompression(value: unknown): value is Compression {
  return (COMPRESSIONS as readonly unknown[]).includes(value);
}
