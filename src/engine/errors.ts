import { UserError } from '../util/errors.js';

/** A backend that was asked for by name cannot be used here. */
export class BackendUnavailableError extends UserError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendUnavailableError';
  }
}
