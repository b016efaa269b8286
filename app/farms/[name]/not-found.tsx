import Link from "next/link";
import { buttonClass } from "@/components/ui/button";

export default function FarmNotFound() {
  return (
    <div className="mx-auto max-w-lg py-16 text-center">
      <h1 className="text-xl font-semibold">No such farm</h1>
      <p className="mt-2 text-sm text-muted">It may have been deleted, or the name is misspelt.</p>
      <Link href="/" className={`${buttonClass("primary")} mt-6`}>
        Back to farms
      </Link>
    </div>
  );
}
