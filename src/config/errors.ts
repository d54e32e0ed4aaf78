import { badFlagValue, UserError } from '../util/errors.js';

/** One problem in a config, with enough context to fix it without reading code. */
export interface ConfigIssue {
  /** Dotted field path such as `train.optimizer.lr`; empty for the document itself. */
  path: string;
  /** What is wrong, the bad value, and what would be allowed. */
  message: string;
  /** Where the value came from: the config file's name, or a flag such as `--epochs`. */
  source: string;
  /** 1-based line in the file, when the value came from a file. */
  line?: number;
  /**
   * The text given after the flag, when the value came from one: the issue then reads as
   * every bad flag value does (`--epochs: 'ten' is not valid; expected ...`) and `message`
   * names the field itself.
   */
  value?: string;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  if (issue.value !== undefined) return badFlagValue(issue.source, issue.value, issue.message);
  const where = issue.line === undefined ? issue.source : `${issue.source}:${issue.line}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/**
 * An invalid config file or override. Holds every problem found, not just the first;
 * the message has one line per issue. Exit code 1 for a bad file, 2 for bad flag values.
 */
export class ConfigError extends UserError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options: { exitCode?: 1 | 2; cause?: unknown } = {}) {
    super(issues.map(formatConfigIssue).join('\n'), options);
    this.name = 'ConfigError';
    this.issues = issues;
  }

  override details(): Record<string, unknown> {
    return { issues: this.issues };
  }
}
