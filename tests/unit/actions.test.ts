import { beforeEach, describe, expect, it, vi } from "vitest";

/**
 * The console's server actions called directly, outside Next: a form with a
 * field missing or malformed (a stale page, a hand-made POST) is answered
 * with `{ status: "invalid", message, errors }`, never an exception (a 500
 * with a ZodError in the server log), and the farm service is not called.
 */
const calls: string[] = [];
/** What the fake service answers next (default: applied). */
let answer: Record<string, unknown> | null = null;
vi.mock("server-only", () => ({}));
vi.mock("next/cache", () => ({ revalidatePath: () => {} }));
vi.mock("next/navigation", () => ({
  redirect: (url: string) => {
    throw new Error(`redirect ${url}`);
  },
}));
/** The signed-in user's role (the real check, lib/auth/next's guard, reads it from the session cookie). */
let role: string | null = "admin";
vi.mock("@/lib/auth/next", async () => {
  const { can, refusalMessage } = await import("../../lib/auth/roles.ts");
  return {
    guard: async (permission: "read" | "operate" | "administer", what: string) =>
      role === null
        ? { ok: false, status: 401, message: "You are not signed in (or the session ended): log in again. Nothing was changed." }
        : can(role, permission)
          ? { ok: true, user: { id: 1, name: "u", role, sessionId: "s", expiresAt: new Date() } }
          : { ok: false, status: 403, message: refusalMessage(role, permission, what) },
    clientAddress: async () => "192.0.2.1",
  };
});
const audits: { action: string; result: string; farm: string | null }[] = [];
vi.mock("@/lib/console/db", () => ({ consoleDb: async () => ({}) }));
vi.mock("@/lib/auth/audit", () => ({ audit: async (_db: unknown, e: { action: string; result: string; farm: string | null }) => void audits.push(e) }));
vi.mock("@/lib/console/farm-service", () => ({
  forgetDrift: () => {},
  farmService: async () =>
    new Proxy(
      {},
      {
        // Not a thenable: awaiting the service must not call "then".
        get: (_t, method: string) =>
          method === "then"
            ? undefined
            : async () => {
                calls.push(method);
                return answer ?? { ok: true, farm: "web", outcome: "applied", message: "done" };
              },
      },
    ),
}));

const labRuns: number[] = [];
vi.mock("@/lib/console/env", () => ({ consoleEnv: () => ({ target: { kind: "lab", name: "t" } }) }));
vi.mock("@/lib/service/lab", () => ({
  LabRunError: class extends Error {},
  runLabTest: async (_t: unknown, _row: unknown, n: number) => {
    labRuns.push(n);
    return { ok: n, connections: n, backends: [] };
  },
}));

const farms = await import("../../lib/actions/farms.ts");
const lab = await import("../../lib/actions/lab.ts");
const backends = await import("../../lib/actions/backends.ts");
const { IDLE } = await import("../../lib/actions/state.ts");
const history = await import("../../lib/actions/history.ts");
const staging = await import("../../lib/actions/staging.ts");

const form = (fields: Record<string, string>) => {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.set(k, v);
  return f;
};

type Action = (prev: typeof IDLE, form: FormData) => Promise<typeof IDLE>;
/** Every action that names a farm, with the other fields a valid submission carries. */
const ACTIONS: [string, Action, Record<string, string>][] = [
  ["setModeAction", farms.setModeAction, { mode: "nat" }],
  ["setStatusAction", farms.setStatusAction, { status: "up" }],
  ["updateFarmAction", farms.updateFarmAction, { vip: "198.51.100.1", ports: "80", protocol: "tcp" }],
  ["updateFarmSettingsAction", farms.updateFarmSettingsAction, { vip: "198.51.100.1", ports: "80", protocol: "tcp", scheduler: "weight", persistence: "none" }],
  ["reapplyAction", farms.reapplyAction, {}],
  ["deleteFarmAction", farms.deleteFarmAction, {}],
  ["addBackendAction", backends.addBackendAction, { ip: "203.0.113.10", port: "80", weight: "1" }],
  ["updateBackendAction", backends.updateBackendAction, { mark: "0x200", ip: "203.0.113.10", port: "80", weight: "1" }],
  ["removeBackendAction", backends.removeBackendAction, { mark: "0x200" }],
  ["setMaintenanceAction", backends.setMaintenanceAction, { mark: "0x200", mode: "drain" }],
];

beforeEach(() => {
  calls.length = 0;
  answer = null;
  role = "admin";
});

describe("server actions check the role first", () => {
  const valid = (fields: Record<string, string>) => form({ farm: "web", ...fields });
  const OPERATOR_MAY = new Set(["setModeAction", "setStatusAction", "reapplyAction", "addBackendAction", "updateBackendAction", "removeBackendAction", "setMaintenanceAction"]);
  it.each(ACTIONS)("%s: refused for a viewer and for no session, the service never called", async (_name, action, fields) => {
    for (const r of ["viewer", null]) {
      role = r;
      const state = await action(IDLE, valid(fields));
      expect(state.status).toBe("failed");
      expect(state.message).toMatch(r ? /^Refused: .* needs the (operator|admin) role.*signed in as viewer/ : /not signed in/);
      expect(state.errors._form).toEqual([state.message]);
    }
    expect(calls).toEqual([]);
  });
  it.each(ACTIONS)("%s: an operator may or may not, by the table of roles", async (name, action, fields) => {
    role = "operator";
    const state = await action(IDLE, valid(fields));
    if (OPERATOR_MAY.has(name)) expect(calls.length).toBe(1);
    else {
      expect(state.message).toMatch(/^Refused: .* needs the admin role/);
      expect(calls).toEqual([]);
    }
  });
});

describe("server actions with a missing or malformed field", () => {
  it.each(ACTIONS)("%s without its farm field: a clear message, nothing changed", async (_name, action, fields) => {
    const state = await action(IDLE, form(fields));
    expect(state.status).toBe("invalid");
    expect(state.message).toMatch(/farm/i);
    expect(state.errors.farm?.[0]).toMatch(/farm/i);
    expect(calls).toEqual([]);
  });

  it.each(ACTIONS)("%s with a farm name that cannot be one: refused", async (_name, action, fields) => {
    const state = await action(IDLE, form({ ...fields, farm: "x".repeat(200) }));
    expect(state.status).toBe("invalid");
    expect(state.errors.farm?.[0]).toBeTruthy();
    expect(calls).toEqual([]);
  });

  it.each([
    ["setModeAction, mode snat", farms.setModeAction, { farm: "web", mode: "snat" }, "mode"],
    ["setModeAction, no mode", farms.setModeAction, { farm: "web" }, "mode"],
    ["setStatusAction, status paused", farms.setStatusAction, { farm: "web", status: "paused" }, "status"],
    ["updateBackendAction, mark zzz", backends.updateBackendAction, { farm: "web", mark: "zzz", ip: "203.0.113.10" }, "mark"],
    ["removeBackendAction, no mark", backends.removeBackendAction, { farm: "web" }, "mark"],
    ["setMaintenanceAction, mode later", backends.setMaintenanceAction, { farm: "web", mark: "0x200", mode: "later" }, "mode"],
  ] as [string, Action, Record<string, string>, string][])("%s: refused on that field", async (_name, action, fields, field) => {
    const state = await action(IDLE, form(fields));
    expect(state.status).toBe("invalid");
    expect(state.message.length).toBeGreaterThan(0);
    expect(state.errors[field]?.[0]).toBeTruthy();
    expect(calls).toEqual([]);
  });

  it("a valid submission still reaches the service, and is audited with its farm and result", async () => {
    audits.length = 0;
    const state = await farms.setModeAction(IDLE, form({ farm: "web", mode: "nat" }));
    expect(state).toMatchObject({ status: "ok", message: "done" });
    expect(calls).toEqual(["setMode"]);
    expect(audits).toMatchObject([{ action: "switching a farm between NAT and DNAT", farm: "web", result: "ok", address: "192.0.2.1", actor: "u" }]);
  });

  it("lab traffic is audited like every operation: who sent how many connections to which farm, and what answered; a viewer's run is refused", async () => {
    audits.length = 0;
    labRuns.length = 0;
    const state = await lab.runLabTestAction({ ...IDLE }, form({ farm: "web", connections: "7" }));
    expect(state).toMatchObject({ status: "ok", message: "7 of 7 connections answered." });
    expect(labRuns).toEqual([7]);
    expect(audits).toMatchObject([{ action: "run lab traffic", farm: "web", result: "ok", actor: "u", address: "192.0.2.1", detail: expect.stringMatching(/7 of 7 connections answered.*"connections":"7"/) }]);
    role = "viewer";
    try {
      const refused = await lab.runLabTestAction({ ...IDLE }, form({ farm: "web", connections: "7" }));
      expect(refused.status).toBe("failed");
      expect(refused.message).toMatch(/viewer/i);
      expect(labRuns).toEqual([7]);
    } finally {
      role = "admin";
    }
  });

  it("not a form at all: refused", async () => {
    const state = await farms.reapplyAction(IDLE, undefined as unknown as FormData);
    expect(state.status).toBe("invalid");
    expect(calls).toEqual([]);
  });
});

describe("the service's refusals reach a field the form shows", () => {
  it("a backend that gets no mark: the add-backend form shows it (it has no mark input)", async () => {
    answer = { ok: false, reason: "invalid", message: "The farm was not saved: fix the highlighted fields.", errors: { "backends.2.mark": ["no netfilter mark left for this backend"], "backends.2.weight": ["weight must be a whole number from 1 to 100"] } };
    const state = await backends.addBackendAction(IDLE, form({ farm: "web", ip: "203.0.113.10", port: "80", weight: "1" }));
    expect(state.status).toBe("invalid");
    expect(state.errors._form).toEqual(["mark: no netfilter mark left for this backend"]);
    expect(state.errors.weight).toEqual(["weight must be a whole number from 1 to 100"]);
  });
});

describe("warnings reach the action's result", () => {
  it("an ok result with warnings keeps them and says so in the message", async () => {
    const { toFormState: actionState } = await import("../../lib/service/errors.ts");
    const state = actionState({ ok: true, farm: "any", outcome: "applied", message: "Farm any applied.", warnings: ["farm \"any\": protocol all on ports * captures every connection"] });
    expect(state).toMatchObject({ status: "ok", warnings: [expect.stringMatching(/captures every connection/)] });
    expect(state.message).toMatch(/^Farm any applied\. Warning: farm "any": protocol all/);
  });
});

describe("configuration history and staged changes: roles and bad input", () => {
  // Reverting and the staging setting are admin's; applying, discarding and confirming staged changes operator's.
  const CASES: [string, Action, Record<string, string>, "operator" | "admin", string][] = [
    ["revertAction", history.revertAction, { revision: "3" }, "admin", "revert"],
    ["setStagingAction", staging.setStagingAction, { staging: "on" }, "admin", "setStaging"],
    ["applyStagedAction", staging.applyStagedAction, { savepoint: "yes" }, "operator", "applyStaged"],
    ["discardStagedAction", staging.discardStagedAction, {}, "operator", "discardStaged"],
    ["confirmSavepointAction", staging.confirmSavepointAction, {}, "operator", "confirmSavepoint"],
  ];
  it.each(CASES)("%s: refused below its role (audited), the service never called; allowed at it", async (_name, action, fields, needs, method) => {
    for (const r of needs === "admin" ? ["viewer", "operator"] : ["viewer"]) {
      role = r;
      const state = await action(IDLE, form(fields));
      expect(state.message).toMatch(new RegExp(`^Refused: .* needs the ${needs} role`));
    }
    expect(calls).toEqual([]);
    role = needs;
    expect((await action(IDLE, form(fields))).status).toBe("ok");
    expect(calls).toEqual([method]);
  });
  it("a malformed revision, staging or savepoint field is invalid, nothing called", async () => {
    for (const [action, fields] of [
      [history.revertAction, { revision: "0" }],
      [history.revertAction, { revision: "x; rm -rf /" }],
      [history.revertAction, {}],
      [staging.setStagingAction, { staging: "maybe" }],
      [staging.applyStagedAction, {}],
    ] as [Action, Record<string, string>][]) {
      const state = await action(IDLE, form(fields));
      expect(state.status).toBe("invalid");
    }
    expect(calls).toEqual([]);
  });
});
