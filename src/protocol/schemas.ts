/** Request bodies of the VolumeDriver protocol, checked before the driver sees them. */
import { z } from 'zod';

const name = z.string({ error: 'Name must be a string' });

/**
 * Opts as a Map of its own keys. zod's record would copy them into a plain object, where a JSON
 * `__proto__` key sets the prototype instead and silently vanishes; here it stays a key like any
 * other, and the driver refuses it as an unknown option.
 */
const opts = z.unknown().transform((value, ctx): ReadonlyMap<string, string> => {
  const map = new Map<string, string>();
  if (value === undefined || value === null) return map;
  if (typeof value !== 'object' || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'Opts must be an object of strings' });
    return map;
  }
  for (const key of Object.keys(value)) {
    const option = (value as Record<string, unknown>)[key];
    if (typeof option !== 'string') {
      ctx.addIssue({ code: 'custom', path: [key], message: 'option values must be strings' });
    } else {
      map.set(key, option);
    }
  }
  return map;
});

// Opts may be absent (curl, other orchestrators), null (dockerd) or an object of strings.
export const createRequest = z.object({ Name: name, Opts: opts.optional() });
export const nameRequest = z.object({ Name: name });
export const mountRequest = z.object({
  Name: name,
  ID: z.string({ error: 'ID must be a string' }),
});

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) =>
      issue.path.length ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message,
    )
    .join('; ');
}
