import Link from "next/link";
import { buttonClass } from "@/components/ui/button";

export default function NotFound() {
  return (
    <div className="mx-auto max-w-lg py-16 text-center">
      <h1 className="text-xl font-semibold">Not available</h1>
      <p className="mt-2 text-sm text-muted">This page does not exist with the console's current target.</p>
      <Link href="/" className={`${buttonClass("primary")} mt-6`}>
        Back to farms
      </Link>
    </div>
  );
}
