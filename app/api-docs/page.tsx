import type { Metadata } from "next";
import { headers } from "next/headers";
import { ApiReference } from "@/components/api-docs/api-reference";
import { openApiDocument } from "@/lib/api/openapi";
import { requireUser } from "@/lib/auth/next";
import { cookieSecure } from "@/lib/auth/sessions";

export const metadata: Metadata = { title: "API reference" };

/** The REST API's reference, from the OpenAPI document /api/v1/openapi.json serves; any role may read it. */
export default async function ApiDocsPage() {
  await requireUser();
  // The front server has already checked Host against the console's names.
  const host = (await headers()).get("host") ?? "localhost:3000";
  return <ApiReference doc={openApiDocument()} baseUrl={`${cookieSecure() ? "https" : "http"}://${host}`} />;
}
