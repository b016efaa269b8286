/**
 * Weighted random choice with `-m statistic --mode random`. MARK does not stop
 * rule traversal, so with the guide's order (last backend first, the last
 * matching rule wins) backend k must match with p_k = w_k / (w_k + ... + w_{n-1}):
 * it ends up chosen with p_k * prod_{j<k}(1 - p_j) = w_k / sum(w). A cumulative
 * scheme looks right for two backends and is biased from three on.
 *
 * iptables stores the probability as a 31-bit fraction (lround(p * 2^31)) and
 * prints it with 11 decimals: render exactly that value so that the rules we
 * write and the rules iptables-save gives back are the same text.
 */
export const STATISTIC_SCALE = 0x80000000;

/** Exact probabilities for weights listed in backend order (index 0 first). */
export function ruleProbabilities(weights: readonly number[]): number[] {
  const out = new Array<number>(weights.length);
  let tail = 0;
  for (let k = weights.length - 1; k >= 0; k--) {
    tail += weights[k]!;
    out[k] = weights[k]! / tail;
  }
  return out;
}

/** The fraction the kernel keeps, as an integer out of 2^31. */
export function quantizeProbability(p: number): number {
  return Math.round(p * STATISTIC_SCALE);
}

/** As iptables prints it: `%.11f` of the stored fraction. */
export function formatProbability(p: number): string {
  return (quantizeProbability(p) / STATISTIC_SCALE).toFixed(11);
}

/** The share each backend receives, given the kernel's quantized probabilities (rules applied last-first). */
export function effectiveShares(weights: readonly number[]): number[] {
  const probs = ruleProbabilities(weights).map((p) => quantizeProbability(p) / STATISTIC_SCALE);
  const shares = new Array<number>(weights.length);
  let notYetChosen = 1;
  for (let k = 0; k < weights.length; k++) {
    // Backend k wins when its rule matches and no later rule (lower index) does.
    shares[k] = Math.min(1, probs[k]!) * notYetChosen;
    notYetChosen *= 1 - Math.min(1, probs[k]!);
  }
  return shares;
}
