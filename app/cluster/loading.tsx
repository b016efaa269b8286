export default function Loading() {
  return (
    <p className="text-sm text-muted" role="status">
      Reading the cluster…
    </p>
  );
}
