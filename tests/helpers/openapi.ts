import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

/**
 * An OpenAPI 3.1 document's answer schemas compiled with ajv (JSON Schema
 * 2020-12, the document's dialect): one validator per operation, status
 * and media type, references resolved against the document's components.
 */
type Doc = { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };

const ID = "urn:natfarm:openapi";

function newAjv(doc: Doc) {
  // strict: an unknown keyword in a generated schema is a defect, not noise.
  const ajv = new Ajv2020({ strict: true, allErrors: true, strictTypes: false, strictTuples: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addKeyword("example");
  ajv.addSchema(rebase({ $id: ID, $defs: doc.components.schemas }));
  return ajv;
}

const rebase = (schema: unknown) => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${ID}#/$defs/`));

export type Answers = Map<string, ValidateFunction>;

export const answerKey = (operationId: string, status: number | string, mediaType = "application/json") => `${operationId} ${status} ${mediaType}`;

export function compileResponses(doc: Doc): Answers {
  const ajv = newAjv(doc);
  const out: Answers = new Map();
  for (const item of Object.values(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "parameters") continue;
      for (const [status, answer] of Object.entries<any>(op.responses ?? {})) {
        for (const [media, content] of Object.entries<any>(answer.content ?? {})) {
          out.set(answerKey(op.operationId, status, media), ajv.compile(rebase(content.schema)));
        }
      }
    }
  }
  return out;
}

/** Every operation in the document: id, method, path. */
export function operationsOf(doc: Doc): { id: string; method: string; path: string; op: any }[] {
  return Object.entries(doc.paths).flatMap(([p, item]) =>
    Object.entries(item)
      .filter(([m]) => m !== "parameters")
      .map(([method, op]) => ({ id: op.operationId as string, method, path: p, op })),
  );
}
