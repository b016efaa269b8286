import fs from "node:fs";
import path from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { openApiDocument, ROLE_EXTENSION } from "../../lib/api/openapi.ts";
import { OPERATIONS } from "../../lib/api/operations.ts";
import { compileResponses } from "../helpers/openapi.ts";

/**
 * The OpenAPI document without a server: it validates as OpenAPI 3.1, every
 * $ref resolves, every schema compiles in ajv (2020-12), every operation has
 * a route handler exporting its method (and every /api/v1 handler is in the
 * document), and the error answers follow from what each operation takes.
 */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const doc = openApiDocument() as any;

/** app/api/v1/farms/[name]/route.ts → /api/v1/farms/{name} */
function routeFiles(): Map<string, string> {
  const base = path.join(ROOT, "app", "api", "v1");
  const out = new Map<string, string>();
  for (const f of fs.readdirSync(base, { recursive: true, encoding: "utf8" })) {
    if (!f.endsWith("route.ts")) continue;
    const dir = path.dirname(f) === "." ? "" : `/${path.dirname(f)}`;
    out.set(`/api/v1${dir.replace(/\[(\w+)\]/g, "{$1}")}`, path.join(base, f));
  }
  return out;
}

describe("the OpenAPI document", () => {
  it("validates as OpenAPI 3.1", async () => {
    const v = new Validator();
    const r = await v.validate(structuredClone(doc));
    expect(r.errors ?? []).toEqual([]);
    expect(r.valid).toBe(true);
    expect(v.version).toBe("3.1");
  });

  it("the validator is not a rubber stamp", async () => {
    const broken = structuredClone(doc);
    broken.paths["/api/v1/farms"].get.responses = "none";
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it("every $ref resolves and every answer's schema compiles", () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(20);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeDefined();
    const compiled = compileResponses(doc);
    expect(compiled.size).toBeGreaterThan(OPERATIONS.length * 3);
  });

  it("every operation has a handler exporting its method, and every /api/v1 handler is documented", () => {
    const files = routeFiles();
    expect([...files.keys()].sort()).toEqual(Object.keys(doc.paths).sort());
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      const text = fs.readFileSync(files.get(p)!, "utf8");
      for (const method of Object.keys(item)) {
        expect(text, `${method.toUpperCase()} ${p}`).toMatch(new RegExp(`export (async )?(function|const) ${method.toUpperCase()}\\b`));
      }
      const exported = [...text.matchAll(/export (?:async )?(?:function|const) (GET|POST|PUT|PATCH|DELETE)\b/g)].map((m) => m[1]!.toLowerCase());
      expect(exported.sort(), p).toEqual(Object.keys(item).sort());
    }
  });

  it("declares roles, security and the error answers each operation can give", () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["bearer", "session"]);
    for (const op of OPERATIONS) {
      const o = doc.paths[op.path][op.method];
      expect(o[ROLE_EXTENSION]).toBe(op.role);
      const codes = Object.keys(o.responses);
      expect(codes, op.id).toContain("401");
      if (op.role !== "viewer") expect(codes, op.id).toContain("403");
      if (op.body) expect(codes, op.id).toEqual(expect.arrayContaining(["400", "413", "415"]));
      if (op.ifMatch) expect(codes, op.id).toContain("409");
      if (op.ifMatch === "required") expect(codes, op.id).toContain("428");
      if (op.farm || op.farmInBody) expect(codes, op.id).toContain("404");
    }
    expect(doc.paths["/api/v1/audit"].get[ROLE_EXTENSION]).toBe("admin");
    expect(doc.paths["/api/v1/audit"].get.responses["200"].content["application/x-ndjson"]).toBeDefined();
    // The farm's schema is the file format's, generated: strict, with its bounds.
    const farm = doc.components.schemas.Farm;
    expect(farm.additionalProperties).toBe(false);
    expect(farm.required).toEqual(expect.arrayContaining(["name", "vip", "ports", "protocol", "mode"]));
    expect(farm.properties.backends.items).toEqual({ $ref: "#/components/schemas/Backend" });
    expect(doc.components.schemas.Backend.properties.weight).toMatchObject({ type: "integer", minimum: 1, maximum: 100 });
    expect(doc.components.schemas.BackendPatch.properties.weight.default).toBeUndefined();
    expect(doc.components.schemas.BackendCreate.properties.mark).toBeUndefined();
  });
});
