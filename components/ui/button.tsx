import type { ComponentProps } from "react";

/** Button looks, shared by <button> and links styled as buttons. */
export type Tone = "primary" | "secondary" | "danger" | "ghost";

const TONES: Record<Tone, string> = {
  primary: "bg-accent text-accent-fg hover:opacity-90 border border-transparent",
  secondary: "bg-surface text-fg border border-line hover:bg-surface-2",
  danger: "bg-surface text-bad border border-line hover:bg-bad-soft",
  ghost: "bg-transparent text-fg border border-transparent hover:bg-surface-2",
};

export function buttonClass(tone: Tone = "secondary", size: "sm" | "md" = "md"): string {
  const pad = size === "sm" ? "h-8 px-2.5 text-xs" : "h-9 px-3.5 text-sm";
  return `inline-flex items-center justify-center gap-1.5 rounded-md font-medium whitespace-nowrap transition-colors disabled:cursor-not-allowed disabled:opacity-50 ${pad} ${TONES[tone]}`;
}

export function Button({
  tone = "secondary",
  size = "md",
  className = "",
  type = "button",
  ...props
}: ComponentProps<"button"> & { tone?: Tone; size?: "sm" | "md" }) {
  return <button type={type} className={`${buttonClass(tone, size)} ${className}`} {...props} />;
}
