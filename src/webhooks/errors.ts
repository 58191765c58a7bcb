/** A delivery refused before anything was recorded; carries its HTTP answer and a stable code. */
export class WebhookError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'WebhookError';
  }
}
