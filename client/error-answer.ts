/** What an error answer's body says, as both clients read it before wording it their own way. */
export interface ErrorAnswer {
  /** The problem document's fields (`title`, `detail`, `code`), when the body is one. */
  problem?: { title: string; detail?: string; code?: string };
  /** API Gateway's `{"message": …}` (a Function URL's `{"Message": …}`), when the body is that instead. */
  message?: string;
}

/** Reads an error answer's body (any text: JSON or not) as a problem document or a gateway message. */
export function readErrorAnswer(text: string): ErrorAnswer {
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  if (body && typeof body.title === 'string') {
    return {
      problem: {
        title: body.title,
        ...(typeof body.detail === 'string' ? { detail: body.detail } : {}),
        ...(typeof body.code === 'string' ? { code: body.code } : {}),
      },
    };
  }
  const message = typeof body?.message === 'string' ? body.message : body?.Message;
  return typeof message === 'string' ? { message } : {};
}
