/** The kernel could not be read: statuses come from the database alone. */
export function LiveErrorNote({ message }: { message: string }) {
  return (
    <div role="alert" className="mb-4 rounded-md border border-warn/40 bg-warn-soft px-4 py-3 text-sm text-warn">
      <p className="font-semibold">Live rules could not be read, so drift is not shown.</p>
      <p className="mt-1 font-mono text-xs break-all">{message}</p>
    </div>
  );
}
