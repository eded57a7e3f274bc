/**
 * What a backend can honour beyond plain text, checked before it generates. Its own module so that backends
 * loaded lazily (gguf-backend.ts) use it without an import cycle through backends.ts.
 */
import type { GenerateRequest } from './backends.ts';
import { ApiError } from './protocol.ts';

/** Refuses what a backend cannot honour (400 unsupported_parameter) instead of silently ignoring it. */
export function refuseUnsupported(
  what: string,
  req: GenerateRequest,
  can: { json_object?: boolean; json_schema?: boolean; logprobs?: boolean } = {},
): void {
  const f = req.responseFormat?.type;
  if (f && !can[f])
    throw new ApiError(
      400,
      f === 'json_schema'
        ? `${what} does not support response_format json_schema (gguf models do; json_object is constrained on local models)`
        : `${what} does not support response_format ${f}`,
      'invalid_request_error',
      'response_format',
      'unsupported_parameter',
    );
  if (req.logprobs !== undefined && !can.logprobs)
    throw new ApiError(
      400,
      `${what} does not return logprobs`,
      'invalid_request_error',
      'logprobs',
      'unsupported_parameter',
    );
}
