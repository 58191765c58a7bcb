/** A deploy request that cannot be honoured; carries the HTTP status and a stable code for the API edge. */
export class DeployError extends Error {
  override readonly name = 'DeployError';
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 422 | 503,
    readonly code: string,
    message: string,
    readonly errors: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}
