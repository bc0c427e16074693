/** A command-line mistake: names the option and what is allowed (exit status 2). */
export class UsageError extends Error {
  constructor(readonly option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = 'UsageError';
  }
}
