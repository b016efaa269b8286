import { describe, expect, it } from "vitest";
import { effectiveShares, formatProbability, quantizeProbability, ruleProbabilities } from "../../lib/netfilter/probability.ts";

describe("rule probabilities", () => {
  it("match the guide for two equal backends", () => {
    expect(ruleProbabilities([1, 1]).map(formatProbability)).toEqual(["0.50000000000", "1.00000000000"]);
  });

  it.each([[[1, 1, 1]], [[1, 2, 3]], [[5, 1, 1, 2, 1]], [[100, 1]], [Array.from({ length: 64 }, (_, i) => (i % 100) + 1)]])(
    "give every backend exactly its weight's share: %j",
    (weights) => {
      const total = weights.reduce((a, b) => a + b, 0);
      const shares = effectiveShares(weights);
      shares.forEach((s, k) => expect(s).toBeCloseTo(weights[k]! / total, 8));
      expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    },
  );

  it("are printed with iptables' 31-bit precision", () => {
    expect(formatProbability(1 / 3)).toBe("0.33333333349");
    expect(quantizeProbability(1)).toBe(0x80000000);
  });

  it("a cumulative scheme would be biased from three backends on (why the formula matters)", () => {
    // p_k = cumulative share, evaluated last-first and last-match-wins, as naive generators do.
    const cumulative = [1 / 3, 2 / 3, 1];
    let notChosen = 1;
    const shares = cumulative.map((p) => {
      const s = p * notChosen;
      notChosen *= 1 - p;
      return s;
    });
    expect(shares[1]).toBeCloseTo(0.444, 2);
    expect(effectiveShares([1, 1, 1])[1]).toBeCloseTo(1 / 3, 8);
  });
});
