import { z } from "@hono/zod-openapi";
import { type IdPrefix, idPattern } from "../db/ids.js";

/** Default and maximum page sizes for list endpoints. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** A missing value keeps zod's default message, which `toInvalidParams` reports as "is required". */
export const Rfc3339 = z.iso
  .datetime({
    offset: true,
    error: (issue) =>
      issue.input === undefined ? undefined : "must be an RFC 3339 date-time with a time zone, e.g. 2027-01-31T00:00:00Z",
  })
  .openapi({ format: "date-time", example: "2027-01-31T00:00:00Z" });

export function idSchema(prefix: IdPrefix, resource: string) {
  return z
    .string()
    .regex(idPattern(prefix), `must be a ${resource} id such as ${prefix}_0123456789abcdef01234567`)
    .openapi({ example: `${prefix}_0123456789abcdef01234567` });
}

export function idParams(prefix: IdPrefix, resource: string) {
  return z.object({ id: idSchema(prefix, resource).openapi({ param: { name: "id", in: "path" } }) });
}

export const PageQuery = {
  limit: z.coerce
    .number({ message: `must be an integer from 1 to ${MAX_PAGE_SIZE}` })
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .default(DEFAULT_PAGE_SIZE)
    .openapi({ param: { name: "limit", in: "query" } }),
  cursor: z
    .string()
    .regex(/^[a-z]+_[0-9a-f]{24}$/, "must be the next_cursor value of the previous page")
    .optional()
    .openapi({ param: { name: "cursor", in: "query" }, description: "The `next_cursor` of the previous page." }),
};

export const Reason = z.strictObject({
  reason: z.string().min(1).max(1000).optional(),
});

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    request_id: z.string().nullable(),
    invalid_params: z.array(z.object({ name: z.string(), reason: z.string() })).optional(),
  })
  .openapi("Problem");

/** Error responses every authenticated route can give, for the OpenAPI document. */
export const ERROR_RESPONSES = {
  400: { description: "Invalid request", content: { "application/problem+json": { schema: ProblemSchema } } },
  401: { description: "Missing or invalid operator token", content: { "application/problem+json": { schema: ProblemSchema } } },
  403: { description: "Role not allowed", content: { "application/problem+json": { schema: ProblemSchema } } },
  404: { description: "Not found", content: { "application/problem+json": { schema: ProblemSchema } } },
  409: { description: "Conflict with the current state", content: { "application/problem+json": { schema: ProblemSchema } } },
} as const;

export function pageOf<T extends { id: string }>(items: T[], limit: number): { items: T[]; next_cursor: string | null } {
  const hasMore = items.length > limit;
  const page = hasMore ? items.slice(0, limit) : items;
  return { items: page, next_cursor: hasMore ? page[page.length - 1]!.id : null };
}

export function jsonBody<T extends z.ZodType>(schema: T) {
  return { content: { "application/json": { schema } }, required: true } as const;
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { content: { "application/json": { schema } }, description } as const;
}
