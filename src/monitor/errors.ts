import { UserError } from '../util/errors.js';

/** The monitor could not show the cluster: no snapshot in time, or the coordinator ended the watch (exit 1). */
export class MonitorError extends UserError {
  constructor(
    message: string,
    /** The coordinator address watched. */
    readonly coordinator: string,
  ) {
    super(message);
    this.name = 'MonitorError';
  }

  override details(): Record<string, unknown> {
    return { coordinator: this.coordinator };
  }
}
