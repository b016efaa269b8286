import { refusalMessage } from "@/lib/auth/roles";

/** What a page for administrators shows anyone else (the front server has answered them 403 already; this is the page's own check). */
export function AdminOnly({ role, what }: { role: string; what: string }) {
  return (
    <section aria-labelledby="forbidden-title" className="mx-auto mt-10 max-w-lg rounded-lg border border-line bg-surface p-6">
      <h1 id="forbidden-title" className="text-lg font-semibold">
        403: for administrators
      </h1>
      <p className="mt-2 text-sm text-muted">{refusalMessage(role, "administer", what).replace(" Nothing was changed.", "")}</p>
    </section>
  );
}
