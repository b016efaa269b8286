/**
 * A small inline chart of the last samples: one line per series, scaled to
 * the largest value shown. Decorative (aria-hidden): the numbers beside it
 * carry the information.
 */
export function Sparkline({
  series,
  width = 120,
  height = 28,
  slots = 60,
}: {
  series: { values: number[]; className: string; dashed?: boolean }[];
  width?: number;
  height?: number;
  slots?: number;
}) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const step = width / Math.max(1, slots - 1);
  const pad = 2;
  const y = (v: number) => pad + (height - 2 * pad) * (1 - v / max);
  return (
    <svg aria-hidden="true" width={width} height={height} viewBox={`0 0 ${width} ${height}`} className="block overflow-visible">
      <line x1={0} x2={width} y1={height - pad} y2={height - pad} className="stroke-line" strokeWidth={1} />
      {series.map((s, i) => {
        if (s.values.length === 0) return null;
        const start = width - (s.values.length - 1) * step;
        const points = s.values.map((v, k) => `${(start + k * step).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
        return s.values.length === 1 ? (
          <circle key={i} cx={width} cy={y(s.values[0]!)} r={1.5} className={s.className} fill="currentColor" />
        ) : (
          <polyline
            key={i}
            points={points}
            fill="none"
            stroke="currentColor"
            strokeWidth={1.5}
            strokeLinejoin="round"
            strokeDasharray={s.dashed ? "3 2" : undefined}
            className={s.className}
          />
        );
      })}
    </svg>
  );
}
