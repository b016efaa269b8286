import { openApiDocument } from "@/lib/api/openapi";
import { caller } from "@/lib/api/route";

/**
 * The OpenAPI 3.1 document of /api/v1. Behind the login like every API
 * route (read permission, any role): the console admits nothing
 * unauthenticated but the login pages, and a client that can call the API
 * holds a token anyway; the document itself holds no secret.
 */
export const dynamic = "force-dynamic";

export async function GET() {
  const c = await caller();
  if (c.refusal) return c.refusal;
  return Response.json(openApiDocument(), { headers: { "Cache-Control": "no-store" } });
}
