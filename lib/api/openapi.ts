import { z } from "zod";
import { FarmSchema } from "../farms/schema.ts";

/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. The
 * farm's schema is generated from the file format's own zod schema
 * (FarmSchema, as the API reads it: `io: "input"`, so defaults are optional
 * and marks may be "0x20c" or a number); JSON Schema 2020-12 is OpenAPI
 * 3.1's schema dialect. Rules zod checks in code (the IPv4 syntax, the
 * ports' grammar, duplicates, cross-farm overlaps) are not expressible and
 * stay server-side: their failures come back as 400 with field paths.
 */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

const IssueSchema = z.object({ path: z.string().describe('the field, dotted: "backends.1.weight" ("" for the farm as a whole)'), message: z.string() });
const ErrorSchema = z.object({ error: z.string(), issues: z.array(IssueSchema) }).loose();
const ResultSchema = z
  .object({
    farm: z.string(),
    outcome: z.enum(["applied", "unchanged", "pending", "removed"]),
    message: z.string(),
    warnings: z.array(z.string()).optional(),
  })
  .loose();

export function openApiDocument(): Record<string, unknown> {
  const farm = jsonSchema(FarmSchema);
  const patch = { ...farm, required: undefined, description: "A JSON merge patch (RFC 7386) of the farm's top-level fields: a field given replaces the stored one, null removes an optional one (healthcheck)." };
  delete patch.required;
  const ref = (n: string) => ({ $ref: `#/components/schemas/${n}` });
  const json = (schema: unknown) => ({ "application/json": { schema } });
  const error = (description: string) => ({ description, content: json(ref("Error")) });
  const etag = { ETag: { description: "the farm's version", schema: { type: "string" } } };
  const errors = {
    "401": error("not signed in, or the API token is unknown, expired or revoked"),
    "403": error("the caller's role may not do this; nothing was changed"),
  };
  const writeErrors = {
    ...errors,
    "400": error("the body is not a valid farm (field paths in issues), or not JSON; nothing was changed"),
    "404": error("no such farm"),
    "409": error("If-Match is stale: the farm changed since that version; nothing was changed"),
    "413": error("the body is larger than 1 MiB; nothing was changed"),
    "415": error("the body is not JSON"),
    "502": error("saved, but the kernel refused the rules (iptables' message in iptables)"),
    "503": error("the natfarm agent is not running"),
  };
  const nameParam = { name: "name", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_-]+$", maxLength: 20 } };
  const ifMatch = { name: "If-Match", in: "header", required: false, description: "the ETag last read; stale: 409", schema: { type: "string" } };
  const changed = { description: "done", headers: etag, content: json({ allOf: [ref("Result"), { type: "object", properties: { farmConfig: ref("Farm") } }] }) };
  return {
    openapi: "3.1.0",
    info: { title: "natfarm REST API", version: "1", description: "Farms in the declarative file format's JSON. Authorization: Bearer <API token> (natfarm token create) or the console's session cookie. Roles: viewer reads; operator may change a farm's status and its backends' weight and state; admin everything." },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: "/" }],
    security: [{ bearer: [] }, { session: [] }],
    paths: {
      "/api/v1/farms": {
        get: {
          operationId: "listFarms",
          summary: "every farm (a farm file) and each one's version",
          responses: { "200": { description: "the farms", content: json(ref("FarmList")) }, ...errors },
        },
        post: {
          operationId: "createFarm",
          summary: "create a farm (admin)",
          requestBody: { required: true, content: json(ref("Farm")) },
          responses: { "201": changed, ...writeErrors },
        },
      },
      "/api/v1/farms/{name}": {
        parameters: [nameParam],
        get: { operationId: "getFarm", summary: "one farm", responses: { "200": { description: "the farm", headers: etag, content: json(ref("Farm")) }, ...errors, "404": error("no such farm") } },
        put: { operationId: "replaceFarm", summary: "replace the farm (operator: status, weights and states only; admin: anything)", parameters: [ifMatch], requestBody: { required: true, content: json(ref("Farm")) }, responses: { "200": changed, ...writeErrors } },
        patch: { operationId: "patchFarm", summary: "change some of the farm's fields (JSON merge patch; roles as PUT)", parameters: [ifMatch], requestBody: { required: true, content: { "application/merge-patch+json": { schema: ref("FarmPatch") }, "application/json": { schema: ref("FarmPatch") } } }, responses: { "200": changed, ...writeErrors } },
        delete: { operationId: "deleteFarm", summary: "delete the farm (admin)", parameters: [ifMatch], responses: { "200": { description: "removed", content: json(ref("Result")) }, ...writeErrors } },
      },
      "/api/v1/openapi.json": {
        get: { operationId: "openApi", summary: "this document", responses: { "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) }, ...errors } },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "an API token, nft_…" },
        session: { type: "apiKey", in: "cookie", name: "__Host-natfarm_session" },
      },
      schemas: {
        Farm: farm,
        FarmPatch: patch,
        FarmList: { type: "object", required: ["farms", "versions"], properties: { farms: { type: "array", items: ref("Farm") }, versions: { type: "object", additionalProperties: { type: "string" }, description: "each farm's ETag by name" } } },
        Result: jsonSchema(ResultSchema),
        Error: jsonSchema(ErrorSchema),
      },
    },
  };
}
