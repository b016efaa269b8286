import { describe, expect, it } from "vitest";
import { parseBackendPatch, parseMarkParam, parseNewBackend, parseQuery } from "../../lib/api/input.ts";
import { openApiDocument } from "../../lib/api/openapi.ts";
import { curlLine, propertyRows, referenceOf, typeLabel } from "../../lib/api/reference.ts";
import { AuditQuerySchema, TablesQuerySchema } from "../../lib/api/schemas.ts";

/** The REST API's request parsing (queries, backend bodies, marks) and the reference page's reading of the OpenAPI document. */
const issues = (r: object) => ("refusal" in r ? ((r as any).refusal.body.issues as { path: string; message: string }[]) : []);

describe("lib/api/input", () => {
  it("queries: defaults, bad values, unknown and repeated parameters by name", () => {
    expect(parseQuery("/api/v1/tables", TablesQuerySchema)).toEqual({ data: { scope: "natfarm" } });
    expect(parseQuery("/api/v1/tables?farm=web&scope=all", TablesQuerySchema)).toEqual({ data: { farm: "web", scope: "all" } });
    expect(issues(parseQuery("/api/v1/tables?scope=x", TablesQuerySchema)).map((i) => i.path)).toEqual(["scope"]);
    expect(issues(parseQuery("/api/v1/tables?full=1", TablesQuerySchema))).toEqual([{ path: "full", message: 'unknown parameter "full"' }]);
    expect(issues(parseQuery("/api/v1/tables?farm=a&farm=b", TablesQuerySchema))).toEqual([{ path: "farm", message: "farm is given more than once" }]);
    const audit = parseQuery("/api/v1/audit?since=2026-12-01T10:00:00Z&limit=5&format=jsonl", AuditQuerySchema);
    expect("data" in audit && audit.data).toMatchObject({ since: new Date("2026-12-01T10:00:00Z"), limit: 5, format: "jsonl" });
    expect(issues(parseQuery("/api/v1/audit?since=soon", AuditQuerySchema)).map((i) => i.path)).toEqual(["since"]);
  });

  it("marks: hex or decimal in range, anything else refused on mark", () => {
    expect(parseMarkParam("0x20c")).toEqual({ mark: 0x20c });
    expect(parseMarkParam("524")).toEqual({ mark: 524 });
    for (const bad of ["zz", "0x1", "0x200;id", "$(id)", ""]) expect(issues(parseMarkParam(bad)).map((i) => i.path), bad).toEqual(["mark"]);
  });

  it("a new backend: the file format's fields, without a mark", () => {
    expect(parseNewBackend({ ip: "203.0.113.5", port: 80 })).toEqual({ value: { ip: "203.0.113.5", port: 80, weight: 1, state: "up", priority: 1 } });
    expect(issues(parseNewBackend({ ip: "203.0.113.5", mark: "0x300" }))).toEqual([{ path: "mark", message: "natfarm allocates a new backend's mark: leave mark out" }]);
    expect(issues(parseNewBackend({ ip: "203.0.113.5; reboot", sudo: 1 })).map((i) => i.path).sort()).toEqual(["ip", "sudo"]);
    expect(issues(parseNewBackend([])).map((i) => i.path)).toEqual([""]);
  });

  it("a backend patch keeps only the fields given (no defaults), and needs one", () => {
    expect(parseBackendPatch({ weight: 7 })).toEqual({ value: { weight: 7 } });
    expect(parseBackendPatch({ port: null })).toEqual({ value: { port: null } });
    expect(issues(parseBackendPatch({})).map((i) => i.path)).toEqual([""]);
    expect(issues(parseBackendPatch({ weight: 0, mark: 1 })).map((i) => i.path).sort()).toEqual(["mark", "weight"]);
  });
});

describe("lib/api/reference", () => {
  it("types in words, with the component they name", () => {
    expect(typeLabel({ $ref: "#/components/schemas/Farm" })).toEqual({ text: "Farm", ref: "Farm" });
    expect(typeLabel({ type: "array", items: { $ref: "#/components/schemas/Backend" } })).toEqual({ text: "array of Backend", ref: "Backend" });
    expect(typeLabel({ anyOf: [{ type: "integer" }, { type: "null" }] }).text).toBe("integer or null");
    expect(typeLabel({ type: "string", enum: ["nat", "dnat"] }).text).toBe('one of "nat", "dnat"');
    expect(typeLabel({}).text).toBe("any");
  });

  it("a schema's fields, nested objects expanded", () => {
    const rows = propertyRows((openApiDocument() as any).components.schemas.Farm);
    expect(rows.find((r) => r.name === "name")).toMatchObject({ required: true, notes: expect.arrayContaining(["1–20 characters"]) });
    expect(rows.find((r) => r.name === "healthcheck.interval")).toMatchObject({ depth: 1, notes: ["1–3600", "default 5"] });
    expect(rows.find((r) => r.name === "backends")!.type).toEqual({ text: "array of Backend", ref: "Backend" });
  });

  it("curl lines quote the body for a shell and carry the token from the environment", () => {
    const line = curlLine("https://lb:3000", "patch", "/api/v1/farms/{name}/backends/{mark}", { ifMatch: "optional", body: { note: "it's" } });
    expect(line).toContain(`-H "Authorization: Bearer $NATFARM_TOKEN"`);
    expect(line).toContain("-X PATCH");
    expect(line).toContain(`-d '{"note":"it'\\''s"}'`);
    expect(line).toContain("'https://lb:3000/api/v1/farms/web/backends/0x200'");
  });

  it("groups every operation of the document under its tag, with its role", () => {
    const doc = openApiDocument() as any;
    const ref = referenceOf(doc, "https://lb:3000");
    const ids = ref.tags.flatMap((t) => t.operations.map((o) => o.id));
    const all = Object.values<any>(doc.paths).flatMap((item) => Object.values<any>(item).map((o) => o.operationId));
    expect(ids.sort()).toEqual(all.sort());
    const del = ref.tags.flatMap((t) => t.operations).find((o) => o.id === "deleteFarm")!;
    expect(del).toMatchObject({ role: "admin", method: "delete" });
    expect(del.responses.map((r) => r.status)).toContain("409");
  });
});
