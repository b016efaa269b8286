import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Every privileged operation of the console, the API, the service and the
 * health checker goes through the kernel port (lib/kernel: the agent for an
 * unprivileged process). This reads the import lines of those folders and
 * refuses any value taken from the modules that run privileged programs
 * themselves: the applier's kernel side, the lab's, runPrivileged, and the
 * direct kernel. Types and the pure helpers listed below are fine.
 */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const SCANNED = ["lib/service", "lib/console", "lib/actions", "lib/health", "app", "components", "scripts/health-checker.ts"];

/** Privileged modules (repo paths, without extension; a folder means all of it) and the values that may still be taken from them. */
const PRIVILEGED: { module: string; allowed: ReadonlySet<string> }[] = [
  // Validation and the error classes are pure: the port throws the same classes.
  { module: "lib/applier", allowed: new Set(["validateFarms", "ApplyError", "FarmValidationError"]) },
  { module: "lib/lab", allowed: new Set() },
  // The nftables engine runs nft; its rendering is pure (the farm page's generated rules).
  { module: "lib/nftables", allowed: new Set(["renderFarmText", "renderNft", "renderFullPayload", "parseNftJson"]) },
  { module: "lib/privileged/run", allowed: new Set() },
  { module: "lib/kernel/direct", allowed: new Set() },
];
/** Values of lib/kernel's index that bypass the choice kernel() makes. */
const KERNEL_INDEX_FORBIDDEN = new Set(["directKernel"]);

interface ImportUse {
  line: number;
  specifier: string;
  /** Value bindings (type-only ones left out); "*" for a namespace import, a re-export of everything or a dynamic import. */
  values: string[];
}

/** The import (and re-export) statements of a module's text, static and dynamic. */
function importsOf(text: string): ImportUse[] {
  const uses: ImportUse[] = [];
  const lineAt = (index: number) => text.slice(0, index).split("\n").length;
  const statement = /^[ \t]*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"']+)["']/gm;
  for (const m of text.matchAll(statement)) {
    const [, , typeOnly, clause = "", specifier = ""] = m;
    if (typeOnly) {
      uses.push({ line: lineAt(m.index!), specifier, values: [] });
      continue;
    }
    const values: string[] = [];
    const braces = /\{([\s\S]*)\}/.exec(clause);
    if (braces) {
      for (const part of braces[1]!.split(",")) {
        const p = part.trim();
        if (!p || p.startsWith("type ")) continue;
        values.push(p.split(/\s+as\s+/)[0]!.trim());
      }
    }
    const outside = clause.replace(/\{[\s\S]*\}/, "").replace(/,/g, " ").trim();
    if (/\*/.test(outside)) values.push("*");
    else if (outside && m[1] === "import") values.push("default");
    uses.push({ line: lineAt(m.index!), specifier, values });
  }
  for (const m of text.matchAll(/^[ \t]*import\s+["']([^"']+)["']/gm)) uses.push({ line: lineAt(m.index!), specifier: m[1]!, values: ["*"] });
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) uses.push({ line: lineAt(m.index!), specifier: m[1]!, values: ["*"] });
  return uses;
}

/** A specifier as a repo path without extension (null: a package). */
function resolve(fromFile: string, specifier: string): string | null {
  let p: string;
  if (specifier.startsWith("@/")) p = specifier.slice(2);
  else if (specifier.startsWith(".")) p = path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, fromFile)), specifier));
  else return null;
  return p.replace(/\.(ts|tsx|mjs|js)$/, "").replace(/\/index$/, "");
}

function violations(file: string, text: string): string[] {
  const out: string[] = [];
  for (const use of importsOf(text).sort((a, b) => a.line - b.line)) {
    const target = resolve(file, use.specifier);
    if (!target) continue;
    for (const rule of PRIVILEGED) {
      if (target !== rule.module && !target.startsWith(`${rule.module}/`)) continue;
      const bad = use.values.filter((v) => !rule.allowed.has(v));
      if (bad.length) out.push(`${file}:${use.line} takes ${bad.join(", ")} from ${use.specifier}`);
    }
    if (target === "lib/kernel") {
      const bad = use.values.filter((v) => KERNEL_INDEX_FORBIDDEN.has(v) || v === "*");
      if (bad.length) out.push(`${file}:${use.line} takes ${bad.join(", ")} from ${use.specifier} (use kernel() or take a KernelPort)`);
    }
  }
  return out;
}

function sources(entry: string): string[] {
  const full = path.join(ROOT, entry);
  if (!fs.existsSync(full)) return [];
  if (fs.statSync(full).isFile()) return [entry];
  return fs
    .readdirSync(full, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.(ts|tsx)$/.test(f))
    .map((f) => path.join(entry, f));
}

describe("architecture: privileged operations only through the kernel port", () => {
  it("the scanner sees what it must refuse", () => {
    const text = [
      'import { applyFarms, validateFarms } from "../applier/index.ts";',
      'import type { LabInfo } from "../lab/index.ts";',
      "import {",
      "  type TablesSnapshot,",
      "  readTables,",
      '} from "@/lib/applier/tables";',
      'import { runPrivileged as run } from "../privileged/run.ts";',
      'import * as lab from "../lab/index.ts";',
      'export { labStatus } from "../lab/index.ts";',
      'const direct = await import("../kernel/direct.ts");',
      'import { directKernel, kernel } from "../kernel/index.ts";',
      'import { ApplyError } from "../applier/errors.ts";',
    ].join("\n");
    expect(violations("lib/service/x.ts", text)).toEqual([
      "lib/service/x.ts:1 takes applyFarms from ../applier/index.ts",
      "lib/service/x.ts:3 takes readTables from @/lib/applier/tables",
      "lib/service/x.ts:7 takes runPrivileged from ../privileged/run.ts",
      "lib/service/x.ts:8 takes * from ../lab/index.ts",
      "lib/service/x.ts:9 takes labStatus from ../lab/index.ts",
      "lib/service/x.ts:10 takes * from ../kernel/direct.ts",
      "lib/service/x.ts:11 takes directKernel from ../kernel/index.ts (use kernel() or take a KernelPort)",
    ]);
  });

  it("lib/service, lib/console, lib/actions, lib/health, app, components and the health checker import no privileged code", () => {
    const files = SCANNED.flatMap(sources);
    expect(files.length).toBeGreaterThan(40);
    const found = files.flatMap((f) => violations(f, fs.readFileSync(path.join(ROOT, f), "utf8")));
    expect(found).toEqual([]);
  });
});
