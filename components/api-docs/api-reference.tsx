import type { ReactNode } from "react";
import { Badge, type BadgeTone } from "@/components/ui/badge";
import { Card, PageTitle } from "@/components/ui/card";
import { propertyRows, referenceOf, type Json, type RefOperation, type TypeLabel } from "@/lib/api/reference";

/**
 * The API reference, rendered on the server from the OpenAPI document the
 * API serves (nothing fetched, nothing run in the browser): operations by
 * tag with the role each needs, parameters, bodies, answers and a curl
 * line, then every schema with its fields.
 */
const METHOD_TONE: Record<string, BadgeTone> = { get: "info", post: "accent", put: "warn", patch: "warn", delete: "bad" };
const ROLE_TONE: Record<string, BadgeTone> = { viewer: "neutral", operator: "warn", admin: "bad" };

/** `code` spans in the document's prose. */
function Rich({ text }: { text: string }) {
  return (
    <>
      {text.split(/(`[^`]+`)/).map((part, i) =>
        part.startsWith("`") && part.endsWith("`") && part.length > 2 ? (
          <code key={i} className="rounded bg-code px-1 font-mono text-[0.85em]">
            {part.slice(1, -1)}
          </code>
        ) : (
          <span key={i}>{part}</span>
        ),
      )}
    </>
  );
}

function Paragraphs({ text, className = "" }: { text: string; className?: string }) {
  return (
    <>
      {text
        .split(/\n\n+/)
        .filter(Boolean)
        .map((p, i) => (
          <p key={i} className={className}>
            <Rich text={p} />
          </p>
        ))}
    </>
  );
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-");

function TypeText({ type }: { type: TypeLabel }) {
  if (!type.ref) return <span className="font-mono text-xs">{type.text}</span>;
  const [before, after] = type.text.split(type.ref);
  return (
    <span className="font-mono text-xs">
      {before}
      <a href={`#schema-${type.ref}`} className="text-accent underline-offset-2 hover:underline">
        {type.ref}
      </a>
      {after}
    </span>
  );
}

function Code({ children, label }: { children: ReactNode; label: string }) {
  return (
    // Scrollable, so reachable by keyboard.
    <pre tabIndex={0} aria-label={label} className="overflow-x-auto rounded-md border border-line bg-code p-3 font-mono text-xs leading-5">
      {children}
    </pre>
  );
}

function Table({ label, head, children }: { label: string; head: string[]; children: ReactNode }) {
  return (
    // Focusable and named: a table wider than a phone scrolls here, and a keyboard must reach it (axe).
    <div className="overflow-x-auto" tabIndex={0} role="region" aria-label={`${label}, table`}>
      <table className="w-full min-w-[36rem] text-sm" aria-label={label}>
        <thead>
          <tr className="border-b border-line text-left text-xs uppercase tracking-wide text-muted">
            {head.map((h) => (
              <th key={h} scope="col" className="px-2 py-1.5 first:pl-0">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

function Operation({ op }: { op: RefOperation }) {
  const title = `${op.method.toUpperCase()} ${op.path}`;
  return (
    <article id={op.id} aria-labelledby={`${op.id}-title`} className="border-b border-line px-4 py-5 last:border-0">
      <h3 id={`${op.id}-title`} className="flex flex-wrap items-center gap-2 text-sm font-semibold">
        <Badge tone={METHOD_TONE[op.method] ?? "neutral"}>{op.method.toUpperCase()}</Badge>
        <span className="font-mono break-all">{op.path}</span>
      </h3>
      <p className="mt-1 text-sm">{op.summary}</p>
      <p className="mt-2 flex flex-wrap items-center gap-2 text-xs text-muted">
        <span>Role:</span>
        <Badge tone={ROLE_TONE[op.role] ?? "neutral"}>{op.role}</Badge>
        <span>{op.roleNote ?? (op.role === "admin" ? "only" : "or higher")}</span>
        <span aria-hidden="true">·</span>
        <span>
          operation <code className="font-mono">{op.id}</code>
        </span>
      </p>
      {op.description && (
        <div className="mt-2 space-y-2 text-sm text-muted">
          <Paragraphs text={op.description.replace(/\n\nRole: [^\n]*$/, "").replace(/^Role: [^\n]*$/, "")} />
        </div>
      )}

      {op.parameters.length > 0 && (
        <section aria-label={`Parameters of ${title}`} className="mt-4">
          <h4 className="mb-1 text-xs font-semibold uppercase tracking-wide text-muted">Parameters</h4>
          <Table label={`Parameters of ${title}`} head={["Name", "In", "Type", "Description"]}>
            {op.parameters.map((p) => (
              <tr key={`${p.in}-${p.name}`} className="border-b border-line align-top last:border-0">
                <td className="py-1.5 pr-2 font-mono text-xs">
                  {p.name}
                  {p.required && <span className="text-bad"> (required)</span>}
                </td>
                <td className="px-2 py-1.5 text-xs">{p.in}</td>
                <td className="px-2 py-1.5">
                  <TypeText type={p.type} />
                </td>
                <td className="px-2 py-1.5 text-xs">{p.description}</td>
              </tr>
            ))}
          </Table>
        </section>
      )}

      {op.body && (
        <section aria-label={`Request body of ${title}`} className="mt-4">
          <h4 className="mb-1 text-xs font-semibold uppercase tracking-wide text-muted">Request body {op.body.required ? "(required)" : "(optional)"}</h4>
          <p className="text-sm">
            <TypeText type={op.body.type} /> <span className="text-xs text-muted">as {op.body.mediaTypes.join(" or ")}</span>
          </p>
        </section>
      )}

      <section aria-label={`Responses of ${title}`} className="mt-4">
        <h4 className="mb-1 text-xs font-semibold uppercase tracking-wide text-muted">Responses</h4>
        <Table label={`Responses of ${title}`} head={["Status", "Body", "Meaning"]}>
          {op.responses.map((r) => (
            <tr key={r.status} className="border-b border-line align-top last:border-0">
              <td className="py-1.5 pr-2">
                <Badge tone={r.status.startsWith("2") ? "ok" : r.status.startsWith("4") ? "warn" : "bad"}>{r.status}</Badge>
              </td>
              <td className="px-2 py-1.5">
                {r.type ? <TypeText type={r.type} /> : "–"}
                {r.mediaTypes.length > 1 && <span className="block text-xs text-muted">{r.mediaTypes.join(", ")}</span>}
                {r.headers.length > 0 && <span className="block text-xs text-muted">headers: {r.headers.join(", ")}</span>}
              </td>
              <td className="px-2 py-1.5 text-xs">
                <Rich text={r.description} />
              </td>
            </tr>
          ))}
        </Table>
      </section>

      <section aria-label={`Example of ${title}`} className="mt-4">
        <h4 className="mb-1 text-xs font-semibold uppercase tracking-wide text-muted">Example</h4>
        <Code label={`curl example of ${title}`}>{op.curl}</Code>
      </section>
    </article>
  );
}

function Schema({ name, schema }: { name: string; schema: Json }) {
  const rows = propertyRows(schema);
  return (
    <article id={`schema-${name}`} aria-labelledby={`schema-${name}-title`} className="border-b border-line px-4 py-4 last:border-0">
      <h3 id={`schema-${name}-title`} className="font-mono text-sm font-semibold">
        {name}
      </h3>
      {schema.description && <Paragraphs text={schema.description} className="mt-1 text-sm text-muted" />}
      {rows.length > 0 ? (
        <div className="mt-2">
          <Table label={`Fields of ${name}`} head={["Field", "Type", "Rules", "Description"]}>
            {rows.map((r) => (
              <tr key={r.name} className="border-b border-line align-top last:border-0">
                <td className="py-1.5 pr-2 font-mono text-xs" style={{ paddingLeft: `${r.depth * 1}rem` }}>
                  {r.name}
                  {r.required && <span className="text-bad"> (required)</span>}
                </td>
                <td className="px-2 py-1.5">
                  <TypeText type={r.type} />
                </td>
                <td className="px-2 py-1.5 text-xs break-all">{r.notes.join(" · ")}</td>
                <td className="px-2 py-1.5 text-xs">{r.description}</td>
              </tr>
            ))}
          </Table>
          {schema.additionalProperties === false && <p className="mt-1 text-xs text-muted">Other fields are refused (400).</p>}
        </div>
      ) : (
        <p className="mt-1 text-sm">
          <TypeText type={{ text: schema.type === "object" ? "object (any fields)" : String(schema.type ?? "any"), ref: null }} />
        </p>
      )}
    </article>
  );
}

export function ApiReference({ doc, baseUrl }: { doc: Json; baseUrl: string }) {
  const ref = referenceOf(doc, baseUrl);
  const info = doc.info ?? {};
  return (
    <>
      <PageTitle
        title="API reference"
        subtitle={
          <>
            {info.title} v{info.version}: <span className="font-mono">/api/v1</span>. The machine-readable document is{" "}
            <a href="/api/v1/openapi.json" className="text-accent underline underline-offset-2">
              /api/v1/openapi.json
            </a>{" "}
            (OpenAPI {doc.openapi}).
          </>
        }
      />
      <div className="grid gap-5 lg:grid-cols-[14rem_1fr]">
        <nav aria-label="API sections" className="lg:sticky lg:top-4 lg:self-start">
          <ul className="space-y-3 text-sm">
            <li>
              <a href="#overview" className="font-medium text-accent hover:underline">
                Overview
              </a>
            </li>
            {ref.tags.map((t) => (
              <li key={t.name}>
                <a href={`#tag-${slug(t.name)}`} className="font-medium text-accent hover:underline">
                  {t.name}
                </a>
                <ul className="mt-1 space-y-0.5 border-l border-line pl-3 text-xs">
                  {t.operations.map((o) => (
                    <li key={o.id}>
                      <a href={`#${o.id}`} className="text-fg hover:underline">
                        <span className="font-mono text-muted">{o.method.toUpperCase()}</span> <span className="break-all">{o.path.replace("/api/v1", "")}</span>
                      </a>
                    </li>
                  ))}
                </ul>
              </li>
            ))}
            <li>
              <a href="#schemas" className="font-medium text-accent hover:underline">
                Schemas
              </a>
            </li>
          </ul>
        </nav>
        <div className="min-w-0 space-y-5">
          <Card title="Overview" titleId="overview">
            <div className="space-y-3 px-4 py-4 text-sm">
              <Paragraphs text={info.description ?? ""} />
              <p>
                Every example reads the token from <code className="rounded bg-code px-1 font-mono">$NATFARM_TOKEN</code> (made with{" "}
                <code className="rounded bg-code px-1 font-mono">natfarm token create --user NAME</code>) and trusts the console&apos;s certificate in{" "}
                <code className="rounded bg-code px-1 font-mono">cert.pem</code>.
              </p>
            </div>
          </Card>
          {ref.tags.map((t) => (
            <Card key={t.name} title={t.name} titleId={`tag-${slug(t.name)}`}>
              {t.description && (
                <p className="border-b border-line px-4 py-3 text-sm text-muted">
                  <Rich text={t.description} />
                </p>
              )}
              {t.operations.map((o) => (
                <Operation key={o.id} op={o} />
              ))}
            </Card>
          ))}
          <Card title="Schemas" titleId="schemas">
            {ref.schemas.map(([name, schema]) => (
              <Schema key={name} name={name} schema={schema} />
            ))}
          </Card>
        </div>
      </div>
    </>
  );
}
