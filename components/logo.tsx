/** natfarm's mark: one client fanned out to three backends. */
export function LogoMark({ className }: { className: string }) {
  return (
    <svg aria-hidden="true" viewBox="0 0 24 24" className={className} fill="none" stroke="currentColor" strokeWidth="2">
      <circle cx="5" cy="12" r="2.5" />
      <circle cx="19" cy="5" r="2.5" />
      <circle cx="19" cy="12" r="2.5" />
      <circle cx="19" cy="19" r="2.5" />
      <path d="M7.5 12h9M7 11l9.5-5M7 13l9.5 5" />
    </svg>
  );
}
