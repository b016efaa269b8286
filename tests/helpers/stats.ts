/**
 * Pearson's chi-square goodness-of-fit test against expected shares, at
 * α = 0.001: a correct balancer fails it once in a thousand runs, a biased one
 * (the cumulative scheme's 33/44/22 % for 1:1:1 gives χ² ≈ 150 at 2,000
 * connections) fails it every time.
 */
const CRITICAL_001: Record<number, number> = { 1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 6: 22.458, 7: 24.322 };

export function chiSquare(observed: number[], weights: number[]): { statistic: number; critical: number; df: number; pass: boolean } {
  const total = observed.reduce((a, b) => a + b, 0);
  const wsum = weights.reduce((a, b) => a + b, 0);
  const statistic = observed.reduce((acc, o, i) => {
    const e = (total * weights[i]!) / wsum;
    return acc + (o - e) ** 2 / e;
  }, 0);
  const df = observed.length - 1;
  const critical = CRITICAL_001[df];
  if (critical === undefined) throw new Error(`no critical value for ${df} degrees of freedom`);
  return { statistic, critical, df, pass: statistic < critical };
}
