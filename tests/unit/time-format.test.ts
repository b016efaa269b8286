import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { utcText } from "../../components/ui/log-table.tsx";

/**
 * Issue 11: times were written in two formats (History's UTC stamps, the
 * browser's locale elsewhere). Every page writes a moment through utcText /
 * UtcTime; a locale formatter on a date anywhere in the pages is the defect
 * coming back (it also differs between the server's and the browser's render).
 */
const ROOT = path.resolve(import.meta.dirname, "../..");

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

// Date formatting by locale. Number formatting (n.toLocaleString("en-US") for counters) is allowed.
const LOCALE_DATE = /\.toLocale(Time|Date)String\(|Intl\.DateTimeFormat|new Date\([^)]*\)\.toLocaleString\(|\.(at|createdAt|lastSeen|appliedAt|observedAt|updatedAt)\)?\.toLocaleString\(/;

describe("one time format on every page", () => {
  it("utcText writes 2026-12-01 10:00:00 UTC from a Date or its ISO text", () => {
    expect(utcText(new Date("2026-12-01T10:00:00.123Z"))).toBe("2026-12-01 10:00:00 UTC");
    expect(utcText("2026-12-01T10:00:00.123Z")).toBe("2026-12-01 10:00:00 UTC");
  });

  it("no page or component formats a date by locale", () => {
    const offenders: string[] = [];
    for (const file of [...sources("app"), ...sources("components")]) {
      fs.readFileSync(path.join(ROOT, file), "utf8")
        .split("\n")
        .forEach((line, i) => LOCALE_DATE.test(line) && offenders.push(`${file}:${i + 1}: ${line.trim()}`));
    }
    expect(offenders).toEqual([]);
  });

  it("the scan sees what it must refuse", () => {
    for (const bad of ["{new Date(n.seen).toLocaleTimeString()}", 'new Date(iso).toLocaleString("en-GB")', "new Intl.DateTimeFormat('en')", "d.toLocaleDateString()"]) expect(LOCALE_DATE.test(bad), bad).toBe(true);
    expect(LOCALE_DATE.test('const count = (n: number) => n.toLocaleString("en-US");')).toBe(false);
  });
});
