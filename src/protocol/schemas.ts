/** Request bodies of the VolumeDriver protocol, checked before the driver sees them. */
import { z } from 'zod';

const name = z.string({ error: 'Name must be a string' });

export const createRequest = z.object({
  Name: name,
  Opts: z.record(z.string(), z.string({ error: 'option values must be strings' })).nullish(),
});
export const nameRequest = z.object({ Name: name });
export const mountRequest = z.object({
  Name: name,
  ID: z.string({ error: 'ID must be a string' }),
});

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) =>
      issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
    )
    .join('; ');
}
